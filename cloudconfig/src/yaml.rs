//! YAML documents as coreos-cloudinit saw them (go-yaml v1 on libyaml, YAML 1.1 scalars), built
//! from `granit-parser` events so that every node keeps its line.
//!
//! What is reproduced from go-yaml v1 (vendored as `github.com/coreos/yaml` upstream; RULES.md,
//! "How validation runs"):
//! - plain scalars resolve with YAML 1.1 rules ([`resolve_plain`]): `yes/no/on/off/y/n` are
//!   booleans, `0744` is an octal integer, `0800` a float; quoted and block scalars are strings;
//! - `!!str`, `!!int`, `!!bool`, `!!float`, `!!null` and `!!binary` tags; `<<` merge keys;
//! - only the first document is read (a second `---` document is ignored), but an implicit
//!   document after `...` is an error, as libyaml required `---` there;
//! - libyaml's refusal of tabs where YAML 1.2 parsers allow them (a tab in the indentation of a
//!   line, or right after a block indicator `-`, `?`, `:`), see [`tab_error`].
//!
//! Keys are stored with every `-` replaced by `_` (upstream's `normalizeNodeNames`), duplicate keys
//! keep the last value. Aliases share nodes ([`Rc`]); a document whose expansion exceeds
//! [`MAX_NODES`] nodes or [`MAX_DEPTH`] levels is refused, so hostile input cannot blow up memory
//! or the stack.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

use granit_parser::{ErrorKind, Event, Parser, ScalarStyle, ScanError, Span, Tag};

use super::decode;
use super::resolve::{resolve_plain, Resolved};

/// Most nodes a document may have once aliases are expanded (a cloud-config has hundreds).
pub const MAX_NODES: usize = 1_000_000;
/// Deepest nesting a document may have once aliases are expanded.
pub const MAX_DEPTH: usize = 1024;

const CORE_TAG_PREFIX: &str = "tag:yaml.org,2002:";

/// A YAML syntax error: 1-based line and the parser's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for YamlError {}

/// One node and the 1-based line where it starts.
#[derive(Debug)]
pub struct Node {
    pub line: usize,
    pub value: Value,
    size: usize,
    depth: usize,
}

#[derive(Debug)]
pub enum Value {
    /// `~`, `null`, an empty value, or `!!null`.
    Null,
    Scalar(Scalar),
    Map(Vec<Entry>),
    Seq(Vec<Rc<Node>>),
}

/// A mapping entry: the normalised key (`-` → `_`), the key's line, the value.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub line: usize,
    pub value: Rc<Node>,
}

/// A non-null scalar: its text as written (after YAML unescaping) and its YAML 1.1 type.
#[derive(Debug)]
pub struct Scalar {
    text: String,
    /// The decoded bytes of a `!!binary` scalar (which then counts as a string).
    binary: Option<Vec<u8>>,
    pub kind: ScalarKind,
    /// A plain `<<` (or `!!merge <<`): a merge key when used as a key.
    merge: bool,
}

/// The type go-yaml v1 gives a scalar when nothing else is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScalarKind {
    Str,
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl Scalar {
    /// The value as text: what go-yaml stores into a string field (the literal as written).
    pub fn text(&self) -> Cow<'_, str> {
        match &self.binary {
            Some(b) => String::from_utf8_lossy(b),
            None => Cow::Borrowed(&self.text),
        }
    }

    /// The value as bytes (a `!!binary` scalar may hold any bytes).
    pub fn bytes(&self) -> &[u8] {
        self.binary.as_deref().unwrap_or(self.text.as_bytes())
    }
}

impl Node {
    /// The mapping entries, or nothing when this is not a mapping.
    pub fn entries(&self) -> &[Entry] {
        match &self.value {
            Value::Map(e) => e,
            _ => &[],
        }
    }

    /// The entry named `key` (normalised spelling) of a mapping.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries().iter().find(|e| e.key == key)
    }

    /// The value of `key` in a mapping, unless absent or null.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &*e.value).filter(|n| !n.is_null())
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    pub fn scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// What upstream iterates as the "children" of a list-typed key: the items of a sequence, or
    /// the values of a mapping (go's reflection walks both the same way).
    pub fn children(&self) -> Box<dyn Iterator<Item = &Node> + '_> {
        match &self.value {
            Value::Seq(items) => Box::new(items.iter().map(|n| &**n)),
            Value::Map(entries) => Box::new(entries.iter().map(|e| &*e.value)),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn leaf(line: usize, value: Value) -> Node {
        Node {
            line,
            value,
            size: 1,
            depth: 1,
        }
    }
}

/// The first document of `text`; `None` when the stream holds no document (empty, comments only).
pub fn load(text: &str) -> Result<Option<Rc<Node>>, YamlError> {
    let deepest = text
        .split('\n')
        .map(|l| l.bytes().take_while(|b| *b == b' ').count())
        .max()
        .unwrap_or(0);
    let mut text = Cow::Borrowed(text);
    let mut repairs = 0;
    loop {
        let mut b = Builder::new(&text);
        let result = b.run();
        if let Err(f) = &result {
            b.protect_open_flows(f.offset);
            if f.underindented_quote && repairs < MAX_QUOTE_REPAIRS {
                repairs += 1;
                text = Cow::Owned(indent_line(&text, f.error.line, deepest + 1));
                continue;
            }
        }
        // libyaml rejected some tabs that granit-parser accepts: report the first one unless the
        // parser stopped earlier.
        let scanned_to = result.as_ref().map_or_else(|f| f.offset, |_| b.read_to);
        let tab = tab_error(&text, scanned_to, &b.protected);
        return match (result, tab) {
            (Err(f), Some(t)) if t.line > f.error.line => Err(f.error),
            (_, Some(t)) => Err(t),
            (Err(f), None) => Err(f.error),
            (Ok(root), None) => Ok(root),
        };
    }
}

/// How many under-indented quoted-scalar lines [`load`] fixes up before giving up.
const MAX_QUOTE_REPAIRS: usize = 256;

/// libyaml accepted continuation lines of a quoted scalar at any indentation (a real config in
/// upstream's tests has them at column 0); YAML 1.2 parsers require them to be indented past the
/// enclosing block. Leading blanks of such lines are not part of the value, so indenting the line
/// further than any line of the document (`indent` spaces) changes nothing but the parser's verdict.
fn indent_line(text: &str, line: usize, indent: usize) -> String {
    let mut out = String::with_capacity(text.len() + indent);
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(l.trim_start_matches(' '));
        } else {
            out.push_str(l);
        }
    }
    out
}

enum Frame {
    Seq {
        line: usize,
        anchor: usize,
        items: Vec<Rc<Node>>,
    },
    Map {
        line: usize,
        anchor: usize,
        entries: Vec<Entry>,
        index: HashMap<String, usize>,
        key: Option<Rc<Node>>,
    },
}

struct Builder<'a> {
    text: &'a str,
    parser: Parser<'a, granit_parser::StrInput<'a>>,
    stack: Vec<Frame>,
    /// Open flow collections: byte offset of `[` / `{`.
    flow: Vec<usize>,
    anchors: HashMap<usize, Rc<Node>>,
    /// Collection slots filled so far (merges copy entries): bounded by [`MAX_NODES`].
    slots: usize,
    /// Byte ranges where tabs are libyaml-legal: scalars, comments, aliases, flow collections.
    protected: Vec<Range<usize>>,
    root: Option<Rc<Node>>,
    /// Where reading stopped (byte offset) after a successful parse.
    read_to: usize,
}

/// Why and where (byte offset) parsing stopped.
struct Failure {
    offset: usize,
    error: YamlError,
    /// granit-parser's YAML 1.2 indentation rule for quoted scalars, which libyaml did not have.
    underindented_quote: bool,
}

impl Failure {
    fn at(span: &Span, line: usize, message: String) -> Failure {
        Failure {
            offset: byte_start(span),
            error: YamlError { line, message },
            underindented_quote: false,
        }
    }
}

impl<'a> Builder<'a> {
    fn new(text: &'a str) -> Self {
        Builder {
            text,
            parser: Parser::new_from_str(text),
            stack: Vec::new(),
            flow: Vec::new(),
            anchors: HashMap::new(),
            slots: 0,
            protected: Vec::new(),
            root: None,
            read_to: text.len(),
        }
    }

    /// Reads the first document, then one more event (as go-yaml did), and returns its root.
    fn run(&mut self) -> Result<Option<Rc<Node>>, Failure> {
        let mut in_document = false;
        loop {
            let Some((event, span)) = self.next()? else {
                return Ok(self.root.take());
            };
            match event {
                Event::StreamEnd => return Ok(self.root.take()),
                Event::DocumentStart(explicit, _) if self.root.is_some() || in_document => {
                    if !explicit {
                        let message = "did not find expected <document start>".into();
                        return Err(Failure::at(&span, span.start.line(), message));
                    }
                    // Later documents are not read (nor checked for tabs).
                    self.read_to = byte_start(&span);
                    return Ok(self.root.take());
                }
                Event::DocumentStart(..) => in_document = true,
                Event::DocumentEnd => {}
                event => self.node_event(event, &span)?,
            }
        }
    }

    /// The next event that is not a comment; comments are recorded as protected ranges.
    fn next(&mut self) -> Result<Option<(Event<'a>, Span)>, Failure> {
        loop {
            match self.parser.next_event() {
                None => return Ok(None),
                Some(Err(e)) => return Err(scan_failure(self.text, &e)),
                Some(Ok((Event::Comment(..), span))) => self.protect(&span),
                Some(Ok(ev)) => return Ok(Some(ev)),
            }
        }
    }

    fn protect(&mut self, span: &Span) {
        if let Some(r) = span.byte_range() {
            if !r.is_empty() {
                self.protected.push(r);
            }
        }
    }

    fn node_event(&mut self, event: Event<'a>, span: &Span) -> Result<(), Failure> {
        let line = span.start.line();
        let fail = |message: String| Failure::at(span, line, message);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.protect(span);
                let value = scalar_value(&text, style, tag.as_deref()).map_err(fail)?;
                self.complete(Node::leaf(line, value), anchor, span)
            }
            Event::Alias(id) => {
                self.protect(span);
                let node = self.anchors.get(&id).cloned().ok_or_else(|| {
                    fail("alias refers to a node that contains it (or is not defined)".into())
                })?;
                self.attach(node, span)
            }
            Event::SequenceStart(style, anchor, _) => {
                self.open_flow(style, span);
                self.stack.push(Frame::Seq {
                    line,
                    anchor,
                    items: Vec::new(),
                });
                Ok(())
            }
            Event::MappingStart(style, anchor, _) => {
                self.open_flow(style, span);
                self.stack.push(Frame::Map {
                    line,
                    anchor,
                    entries: Vec::new(),
                    index: HashMap::new(),
                    key: None,
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.close_flow(span);
                let (line, anchor, value) = match self.stack.pop() {
                    Some(Frame::Seq {
                        line,
                        anchor,
                        items,
                        ..
                    }) => (line, anchor, Value::Seq(items)),
                    Some(Frame::Map {
                        line,
                        anchor,
                        entries,
                        ..
                    }) => (line, anchor, Value::Map(entries)),
                    None => return Err(fail("unbalanced collection end".into())),
                };
                let node = collection(line, value);
                self.complete(node, anchor, span)
            }
            // Stream/document events are handled by `run`; anything else carries no data.
            _ => Ok(()),
        }
    }

    fn open_flow(&mut self, style: granit_parser::StructureStyle, span: &Span) {
        if style == granit_parser::StructureStyle::Flow {
            self.flow.push(byte_start(span));
        } else {
            // A block collection inside a flow one cannot happen; keep the stacks aligned anyway.
            self.flow.push(usize::MAX);
        }
    }

    /// Flow collections still open when parsing failed are protected up to the failure.
    fn protect_open_flows(&mut self, end: usize) {
        for &start in self.flow.iter().filter(|s| **s != usize::MAX) {
            self.protected.push(start..end.max(start));
        }
    }

    fn close_flow(&mut self, span: &Span) {
        if let Some(start) = self.flow.pop() {
            if start != usize::MAX {
                let end = span.byte_range().map_or(start, |r| r.end);
                self.protected.push(start..end.max(start));
            }
        }
    }

    fn complete(&mut self, node: Node, anchor: usize, span: &Span) -> Result<(), Failure> {
        if node.size > MAX_NODES || node.depth > MAX_DEPTH {
            return Err(Failure::at(span, node.line, too_large()));
        }
        let node = Rc::new(node);
        if anchor != 0 {
            self.anchors.insert(anchor, Rc::clone(&node));
        }
        self.attach(node, span)
    }

    fn attach(&mut self, node: Rc<Node>, span: &Span) -> Result<(), Failure> {
        self.slots += 1;
        if self.slots > MAX_NODES {
            return Err(Failure::at(span, node.line, too_large()));
        }
        let slots = &mut self.slots;
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries,
                index,
                key,
                ..
            }) => match key.take() {
                None => {
                    *key = Some(node);
                    Ok(())
                }
                Some(k) => insert(entries, index, &k, node, slots)
                    .map_err(|message| Failure::at(span, k.line, message)),
            },
        }
    }
}

/// Adds `key: value` to a mapping under construction (merge keys splice their mappings in).
fn insert(
    entries: &mut Vec<Entry>,
    index: &mut HashMap<String, usize>,
    key: &Node,
    value: Rc<Node>,
    slots: &mut usize,
) -> Result<(), String> {
    let name = match &key.value {
        Value::Null => String::new(),
        Value::Scalar(s) if s.merge => return merge(entries, index, &value, slots),
        Value::Scalar(s) => s.text().replace('-', "_"),
        Value::Map(_) | Value::Seq(_) => {
            return Err("invalid map key (a mapping or sequence)".into())
        }
    };
    upsert(
        entries,
        index,
        Entry {
            key: name,
            line: key.line,
            value,
        },
    );
    Ok(())
}

fn upsert(entries: &mut Vec<Entry>, index: &mut HashMap<String, usize>, entry: Entry) {
    match index.get(&entry.key) {
        Some(&i) => entries[i] = entry,
        None => {
            index.insert(entry.key.clone(), entries.len());
            entries.push(entry);
        }
    }
}

/// `<<: *map` or `<<: [*a, *b]`: go-yaml v1 sets the merged keys at this point (later keys
/// override them); in a list, earlier mappings take precedence.
fn merge(
    entries: &mut Vec<Entry>,
    index: &mut HashMap<String, usize>,
    value: &Node,
    slots: &mut usize,
) -> Result<(), String> {
    const WANT_MAP: &str = "map merge requires map or sequence of maps as the value";
    let maps: Vec<&Node> = match &value.value {
        Value::Map(_) => vec![value],
        Value::Seq(items) => items.iter().rev().map(|n| &**n).collect(),
        _ => return Err(WANT_MAP.into()),
    };
    for m in maps {
        let Value::Map(src) = &m.value else {
            return Err(WANT_MAP.into());
        };
        *slots += src.len();
        if *slots > MAX_NODES {
            return Err(too_large());
        }
        for e in src {
            upsert(entries, index, e.clone());
        }
    }
    Ok(())
}

fn too_large() -> String {
    format!("document too large once aliases are expanded (limits: {MAX_NODES} nodes, {MAX_DEPTH} levels)")
}

fn collection(line: usize, value: Value) -> Node {
    let children: Vec<&Node> = match &value {
        Value::Seq(items) => items.iter().map(|n| &**n).collect(),
        Value::Map(entries) => entries.iter().map(|e| &*e.value).collect(),
        _ => Vec::new(),
    };
    let size = children
        .iter()
        .fold(1usize, |acc, c| acc.saturating_add(c.size));
    let depth = 1 + children.iter().map(|c| c.depth).max().unwrap_or(0);
    Node {
        line,
        value,
        size,
        depth,
    }
}

fn byte_start(span: &Span) -> usize {
    span.byte_range().map_or(0, |r| r.start)
}

fn scan_failure(text: &str, e: &ScanError) -> Failure {
    let m = e.marker();
    let offset = m
        .byte_offset()
        .unwrap_or_else(|| char_to_byte(text, m.index()));
    Failure {
        offset,
        error: YamlError {
            line: m.line().max(1),
            message: e.info().replace('\n', "; "),
        },
        underindented_quote: *e.kind() == ErrorKind::InvalidQuotedScalarIndent,
    }
}

fn char_to_byte(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

/// The value of a scalar event, typed as go-yaml v1 would (see the module documentation).
fn scalar_value(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    let plain = style == ScalarStyle::Plain;
    let core = tag.and_then(|t| t.suffix_in_namespace(CORE_TAG_PREFIX));
    let core = core.as_deref();
    let merge = text == "<<" && ((plain && tag.is_none()) || core == Some("merge"));
    let string = |binary| {
        Value::Scalar(Scalar {
            text: text.to_string(),
            binary,
            kind: ScalarKind::Str,
            merge,
        })
    };
    let resolved = match (tag, core) {
        (None, _) if plain => resolve_plain(text),
        (None, _) => Resolved::Str,
        (Some(_), Some("binary")) => {
            let bytes = decode::go_base64(text.as_bytes())
                .ok_or("!!binary value contains invalid base64 data")?;
            return Ok(string(Some(bytes)));
        }
        (Some(_), Some(want @ ("bool" | "int" | "float" | "null"))) => {
            let r = resolve_plain(text);
            if r.tag() != want {
                return Err(format!(
                    "cannot decode !!{} `{text}` as a !!{want}",
                    r.tag()
                ));
            }
            r
        }
        // `!!str`, other core tags on a scalar (`!!timestamp`...), custom and `!` tags: a string.
        (Some(_), _) => Resolved::Str,
    };
    Ok(match resolved {
        Resolved::Null => Value::Null,
        Resolved::Str => string(None),
        Resolved::Bool(b) => typed(text, ScalarKind::Bool(b), merge),
        Resolved::Int(i) => typed(text, ScalarKind::Int(i), merge),
        Resolved::Float(f) => typed(text, ScalarKind::Float(f), merge),
    })
}

fn typed(text: &str, kind: ScalarKind, merge: bool) -> Value {
    Value::Scalar(Scalar {
        text: text.to_string(),
        binary: None,
        kind,
        merge,
    })
}

/// libyaml's tab rule, which granit-parser (YAML 1.2) does not share: in block context a tab may
/// not be part of a line's indentation (blank lines included) nor follow a `-`, `?` or `:`
/// indicator. Scalars, comments and flow collections (`protected`) may contain tabs.
fn tab_error(text: &str, end: usize, protected: &[Range<usize>]) -> Option<YamlError> {
    // Sorted, merged ranges: membership by binary search.
    let mut ranges: Vec<Range<usize>> = protected.to_vec();
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    let is_protected = |i: usize| {
        let after = merged.partition_point(|r| r.start <= i);
        after > 0 && merged[after - 1].contains(&i)
    };
    let bytes = text.as_bytes();
    let mut line_start = 0;
    for (line_no, line) in text.split('\n').enumerate() {
        if line_start >= end {
            break;
        }
        let found = |i: usize| YamlError {
            line: line_no + 1,
            message: format!(
                "found character that cannot start any token (a tab at column {})",
                i - line_start + 1
            ),
        };
        // Indentation, or the whole of a blank line.
        for (i, b) in line.bytes().enumerate().map(|(i, b)| (line_start + i, b)) {
            match b {
                b' ' => continue,
                b'\t' if i < end && !is_protected(i) => return Some(found(i)),
                _ => break,
            }
        }
        // Whitespace after a block indicator.
        for (i, b) in line.bytes().enumerate().map(|(i, b)| (line_start + i, b)) {
            if i >= end || !matches!(b, b'-' | b'?' | b':') || is_protected(i) {
                continue;
            }
            if b == b'-' && line.starts_with("---") && i < line_start + 3 {
                continue;
            }
            // Scalars are protected, so an unprotected `-`, `?` or `:` is an indicator.
            let tab = bytes[i + 1..line_start + line.len()]
                .iter()
                .take_while(|c| matches!(c, b' ' | b'\t' | b'\r'))
                .position(|c| *c == b'\t')
                .map(|t| i + 1 + t);
            if let Some(t) = tab.filter(|t| *t < end) {
                return Some(found(t));
            }
        }
        line_start += line.len() + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Rc<Node> {
        load(text).expect("valid YAML").expect("a document")
    }

    fn kind(text: &str) -> Option<ScalarKind> {
        let r = root(&format!("k: {text}"));
        r.get("k").and_then(|n| n.scalar()).map(|s| s.kind)
    }

    #[test]
    fn tags_and_quotes_decide_types() {
        for (input, want) in [
            ("0744", Some(ScalarKind::Int(0o744))),
            ("'0744'", Some(ScalarKind::Str)),
            ("|\n    0744", Some(ScalarKind::Str)),
            ("!!int '12'", Some(ScalarKind::Int(12))),
            ("!!str 12", Some(ScalarKind::Str)),
            ("!!float 1.5", Some(ScalarKind::Float(1.5))),
            ("! 12", Some(ScalarKind::Str)),
            ("!foo 12", Some(ScalarKind::Str)),
            ("!!null ''", None),
            ("~", None),
            ("", None),
        ] {
            assert_eq!(kind(input), want, "{input:?}");
        }
        // go-yaml refused a tag its value does not fit.
        assert!(load("k: !!float 1\n").is_err());
        assert!(load("k: !!bool maybe\n").is_err());
    }

    #[test]
    fn literal_text_is_kept() {
        let r = root("a: off\nb: 0744\nc: !!binary aGVsbG8K\n");
        let text = |k: &str| {
            r.get(k)
                .and_then(|n| n.scalar())
                .map(|s| s.text().into_owned())
        };
        assert_eq!(text("a").as_deref(), Some("off"));
        assert_eq!(text("b").as_deref(), Some("0744"));
        assert_eq!(text("c").as_deref(), Some("hello\n"));
    }

    #[test]
    fn keys_are_normalised_and_duplicates_keep_the_last() {
        let r = root("write-files: 1\nwrite_files: 2\nx: 3\n");
        let keys: Vec<_> = r
            .entries()
            .iter()
            .map(|e| (e.key.as_str(), e.line))
            .collect();
        assert_eq!(keys, [("write_files", 2), ("x", 3)]);
    }

    #[test]
    fn lines_of_nodes() {
        let r = root("#cloud-config\ncoreos:\n  units:\n    - name: a\n    -\n      name: b\n");
        let units = r
            .get("coreos")
            .and_then(|c| c.entry("units"))
            .expect("units");
        assert_eq!(units.line, 3);
        let items: Vec<usize> = units.value.children().map(|n| n.line).collect();
        assert_eq!(items, [4, 6]);
    }

    #[test]
    fn merge_keys_and_aliases() {
        let r = root("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n");
        let m = r.get("m").expect("m");
        let get = |k: &str| m.get(k).and_then(|n| n.scalar()).map(|s| s.kind);
        assert_eq!(get("x"), Some(ScalarKind::Int(1)));
        assert_eq!(get("y"), Some(ScalarKind::Int(3)));
        assert!(load("m:\n  <<: 5\n").is_err());
    }

    #[test]
    fn only_the_first_document_counts() {
        let r = root("a: 1\n---\nb: [\n\t\n");
        assert!(r.get("a").is_some() && r.get("b").is_none());
        let e = load("a: 1\n...\nb: 2\n").expect_err("implicit second document");
        assert_eq!(e.line, 3);
        assert!(load("#cloud-config\n# only comments\n")
            .expect("valid")
            .is_none());
    }

    #[test]
    fn syntax_errors_have_lines() {
        assert_eq!(load("a:\na").expect_err("error").line, 2);
        assert_eq!(load("#hello\na:\na").expect_err("error").line, 3);
        assert_eq!(load("a: [1\n").expect_err("error").line, 1);
        assert_eq!(load("a: *nope\n").expect_err("error").line, 1);
        assert_eq!(load("x: !!binary ***\n").expect_err("error").line, 1);
        assert_eq!(load("x: !!int foo\n").expect_err("error").line, 1);
        assert!(load("? [a]\n: b\n").is_err());
    }

    #[test]
    fn tabs_as_libyaml_saw_them() {
        for (text, line) in [
            ("\t", 1),
            ("#cloud-config\n\t", 2),
            ("a: 1\n\t\nb: 2\n", 2),
            ("key:\tvalue\n", 1),
            ("- \tfoo\n", 1),
            ("a:\n\tb: 1\n", 2),
            ("\t# comment\n", 1),
        ] {
            assert_eq!(load(text).expect_err(text).line, line, "{text:?}");
        }
        for text in [
            "a: 1 # tab\tin comment\n",
            "a: \"tab\tin quotes\"\n",
            "a: [1,\n\t2]\n",
            "c: |\n  l1\n  \tl2\n",
            "a: b\t\n",
            "key\t: value\n",
            "--- \t\na: 1\n",
        ] {
            assert!(load(text).is_ok(), "{text:?}");
        }
    }

    #[test]
    fn underindented_quoted_lines_are_accepted_as_libyaml_did() {
        let text =
            "units:\n  - name: a\n    content: '[Match]\n\n  Name=eth47\n\nx'\n    runtime: yes\n";
        let r = root(text);
        let unit = r
            .get("units")
            .and_then(|u| u.children().next())
            .expect("unit");
        let content = unit
            .get("content")
            .and_then(|c| c.scalar())
            .map(|s| s.text().into_owned());
        assert_eq!(content.as_deref(), Some("[Match]\nName=eth47\nx"));
        assert_eq!(unit.entry("runtime").map(|e| e.line), Some(8));
        assert_eq!(indent_line("a\n b\n c", 3, 2), "a\n b\n  c");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text += &format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n");
        }
        let e = load(&text).expect_err("bomb");
        assert!(e.message.contains("too large"), "{e:?}");
        assert!(load("a: &a [*a]\n").is_err());
        // Merges copy entries: many merges of one big mapping are bounded too.
        let keys: Vec<String> = (0..1000).map(|i| format!("k{i}: 0")).collect();
        let mut text = format!("big: &big {{{}}}\n", keys.join(", "));
        for i in 0..1100 {
            text += &format!("m{i}: {{<<: *big}}\n");
        }
        let e = load(&text).expect_err("merge bomb");
        assert!(e.message.contains("too large"), "{e:?}");
    }
}
