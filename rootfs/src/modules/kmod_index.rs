//! libkmod's binary index files (`modules.dep.bin`, `modules.alias.bin`, ...): a writer that
//! produces the bytes kmod's `depmod` writes, and a small bounds-checked reader.
//!
//! An index maps 7-bit ASCII keys to lists of `(priority, value)` pairs, values sorted by
//! priority. The file is a big-endian header (magic `0xB007F457`, version `0x00020001`, the
//! offset of the root node) followed by a compressed trie. A node is referred to by a `u32`
//! whose low 28 bits are its file offset and whose high bits say which parts the node has:
//!
//! * `0x80000000` a prefix: the characters every key below the node shares next, NUL-ended;
//! * `0x20000000` children: the first and last child character (one byte each), then one
//!   offset per character in that range (0 where there is no child);
//! * `0x40000000` values: a count, then per value its priority and the NUL-ended text.
//!
//! depmod writes the trie depth-first, children (in character order) before their parent,
//! so every child lies before its parent in the file. The trie itself does not depend on the
//! order keys were added in (it is the compressed trie of the key set, the root never having
//! a prefix); the order of one key's values does: by priority, and among equal priorities
//! the value added last comes first, as depmod's insertion does.

use std::collections::BTreeMap;

/// First word of every index file ("BOOTFAST").
pub const MAGIC: u32 = 0xB007_F457;
/// Format version 2.1: major in the high half, minor in the low half.
pub const VERSION: u32 = 0x0002_0001;

const HAS_PREFIX: u32 = 0x8000_0000;
const HAS_VALUES: u32 = 0x4000_0000;
const HAS_CHILDREN: u32 = 0x2000_0000;
const FLAGS: u32 = 0xF000_0000;
const OFFSET_MASK: u32 = 0x0FFF_FFFF;
/// Characters are 7-bit: a node has at most this many children.
const CHILD_MAX: u8 = 128;
const HEADER_LEN: usize = 12;

/// Why an index could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("index text {text:?} is not 7-bit ASCII without NUL bytes")]
    BadText { text: String },
    #[error("index too large: node offset {offset} does not fit in 28 bits")]
    TooLarge { offset: usize },
    #[error("not a kmod index (magic {magic:#010x}, version {version:#010x})")]
    BadHeader { magic: u32, version: u32 },
    #[error("bad index node at offset {offset}: {reason}")]
    BadNode { offset: u32, reason: &'static str },
}

/// Every key of an index with its `(priority, value)` pairs, as [`IndexReader::entries`]
/// returns them.
pub type Entries = BTreeMap<Vec<u8>, Vec<(u32, Vec<u8>)>>;

/// One value of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub priority: u32,
    pub text: Vec<u8>,
}

/// An index being built: keys with their values, then [`IndexBuilder::write`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexBuilder {
    entries: BTreeMap<Vec<u8>, Vec<Value>>,
}

fn check_text(text: &[u8]) -> Result<(), IndexError> {
    if text.iter().all(|&b| b != 0 && b < CHILD_MAX) {
        Ok(())
    } else {
        Err(IndexError::BadText {
            text: String::from_utf8_lossy(text).into_owned(),
        })
    }
}

impl IndexBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `value` to `key`: after the values of lower priority, before those of the same
    /// or a higher one. Both must be 7-bit ASCII without NUL bytes (depmod refuses others).
    /// Returns whether `key` already had this value text.
    pub fn insert(&mut self, key: &[u8], value: &[u8], priority: u32) -> Result<bool, IndexError> {
        check_text(key)?;
        check_text(value)?;
        let values = self.entries.entry(key.to_vec()).or_default();
        let duplicate = values.iter().any(|v| v.text == value);
        let at = values
            .iter()
            .position(|v| v.priority >= priority)
            .unwrap_or(values.len());
        values.insert(
            at,
            Value {
                priority,
                text: value.to_vec(),
            },
        );
        Ok(duplicate)
    }

    /// The keys and their values, keys sorted.
    pub fn entries(&self) -> &BTreeMap<Vec<u8>, Vec<Value>> {
        &self.entries
    }

    /// The index file's bytes, laid out as depmod lays them out.
    pub fn write(&self) -> Result<Vec<u8>, IndexError> {
        let entries: Vec<(&[u8], &[Value])> = self
            .entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        let mut out = Vec::with_capacity(HEADER_LEN + 64 * entries.len());
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        let root = write_node(&mut out, &entries, 0, true)?;
        out[8..12].copy_from_slice(&root.to_be_bytes());
        Ok(out)
    }
}

/// Write the node for `entries` (sorted keys sharing `key[..start]`, non-empty unless this
/// is the root), its children first; returns its offset with flags.
fn write_node(
    out: &mut Vec<u8>,
    entries: &[(&[u8], &[Value])],
    start: usize,
    root: bool,
) -> Result<u32, IndexError> {
    let prefix_len = match (root, entries.first(), entries.last()) {
        (false, Some((first, _)), Some((last, _))) => first[start..]
            .iter()
            .zip(&last[start..])
            .take_while(|(a, b)| a == b)
            .count(),
        _ => 0,
    };
    let end = start + prefix_len;
    let (values, rest) = match entries.first() {
        Some((key, values)) if key.len() == end => (*values, &entries[1..]),
        _ => (&[][..], entries),
    };
    // Children, grouped by the character after the prefix (the keys are sorted).
    let mut children: Vec<(u8, u32)> = Vec::new();
    let mut group = rest;
    while let Some((key, _)) = group.first() {
        let ch = key[end];
        let len = group.iter().take_while(|(k, _)| k[end] == ch).count();
        let offset = write_node(out, &group[..len], end + 1, false)?;
        children.push((ch, offset));
        group = &group[len..];
    }
    let offset = out.len();
    let mut flags = 0;
    if prefix_len > 0 {
        let (key, _) = entries[0];
        out.extend_from_slice(&key[start..end]);
        out.push(0);
        flags |= HAS_PREFIX;
    }
    if let (Some(&(first, _)), Some(&(last, _))) = (children.first(), children.last()) {
        out.push(first);
        out.push(last);
        let mut next = children.iter().peekable();
        for ch in first..=last {
            let child = next.next_if(|(c, _)| *c == ch).map_or(0, |&(_, o)| o);
            out.extend_from_slice(&child.to_be_bytes());
        }
        flags |= HAS_CHILDREN;
    }
    if !values.is_empty() {
        let count = u32::try_from(values.len()).map_err(|_| IndexError::TooLarge { offset })?;
        out.extend_from_slice(&count.to_be_bytes());
        for v in values {
            out.extend_from_slice(&v.priority.to_be_bytes());
            out.extend_from_slice(&v.text);
            out.push(0);
        }
        flags |= HAS_VALUES;
    }
    match u32::try_from(offset) {
        Ok(o) if o <= OFFSET_MASK => Ok(o | flags),
        _ => Err(IndexError::TooLarge { offset }),
    }
}

/// A parsed view of an index file. Every read is bounds-checked and a child must lie before
/// its parent (as depmod writes them), so a hostile file is an error, never a panic or a loop.
#[derive(Debug, Clone, Copy)]
pub struct IndexReader<'a> {
    data: &'a [u8],
    root: u32,
}

/// One decoded node.
struct Node<'a> {
    prefix: &'a [u8],
    first: u8,
    children: Vec<u32>,
    values: Vec<(u32, &'a [u8])>,
}

impl<'a> IndexReader<'a> {
    pub fn new(data: &'a [u8]) -> Result<Self, IndexError> {
        let word = |at: usize| {
            data.get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let (magic, version) = (word(0).unwrap_or(0), word(4).unwrap_or(0));
        if magic != MAGIC || version != VERSION {
            return Err(IndexError::BadHeader { magic, version });
        }
        let root = word(8).ok_or(IndexError::BadNode {
            offset: 8,
            reason: "no root offset",
        })?;
        Ok(IndexReader { data, root })
    }

    /// The values of `key` (exact match), in file order.
    pub fn get(&self, key: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, IndexError> {
        let (mut offset, mut parent) = (self.root, u32::MAX);
        let mut rest = key;
        loop {
            let node = self.node(offset, parent)?;
            let Some(after) = rest.strip_prefix(node.prefix) else {
                return Ok(Vec::new());
            };
            let Some((&ch, tail)) = after.split_first() else {
                return Ok(own(&node.values));
            };
            let child = ch
                .checked_sub(node.first)
                .and_then(|i| node.children.get(usize::from(i)).copied())
                .unwrap_or(0);
            if child & OFFSET_MASK == 0 {
                return Ok(Vec::new());
            }
            parent = offset & OFFSET_MASK;
            offset = child;
            rest = tail;
        }
    }

    /// Every key with its values, keys sorted.
    pub fn entries(&self) -> Result<Entries, IndexError> {
        let mut all = BTreeMap::new();
        let mut stack = vec![(self.root, Vec::new(), u32::MAX)];
        while let Some((offset, mut key, parent)) = stack.pop() {
            let node = self.node(offset, parent)?;
            key.extend_from_slice(node.prefix);
            if !node.values.is_empty() {
                all.insert(key.clone(), own(&node.values));
            }
            for (i, &child) in node.children.iter().enumerate() {
                if child & OFFSET_MASK != 0 {
                    let mut k = key.clone();
                    k.push(node.first.wrapping_add(i as u8));
                    stack.push((child, k, offset & OFFSET_MASK));
                }
            }
        }
        Ok(all)
    }

    /// The node at `offset`, which must lie before `parent` (its parent's offset).
    fn node(&self, offset: u32, parent: u32) -> Result<Node<'a>, IndexError> {
        let at = offset & OFFSET_MASK;
        let bad = |reason| IndexError::BadNode { offset: at, reason };
        if at < HEADER_LEN as u32 || at >= parent {
            return Err(bad("offset outside the file or not before its parent"));
        }
        if offset & FLAGS & !(HAS_PREFIX | HAS_CHILDREN | HAS_VALUES) != 0 {
            return Err(bad("unknown flags"));
        }
        let mut p = at as usize;
        let data = self.data;
        let string = |p: &mut usize| -> Result<&'a [u8], IndexError> {
            let rest = data.get(*p..).ok_or(bad("truncated"))?;
            let len = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or(bad("unterminated string"))?;
            *p += len + 1;
            Ok(&rest[..len])
        };
        let word = |p: &mut usize| -> Result<u32, IndexError> {
            let b = data.get(*p..*p + 4).ok_or(bad("truncated"))?;
            *p += 4;
            Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let prefix = match offset & HAS_PREFIX {
            0 => &[][..],
            _ => string(&mut p)?,
        };
        let (mut first, mut children) = (CHILD_MAX, Vec::new());
        if offset & HAS_CHILDREN != 0 {
            let range = data.get(p..p + 2).ok_or(bad("truncated"))?;
            p += 2;
            if range[0] > range[1] || range[1] >= CHILD_MAX {
                return Err(bad("bad child range"));
            }
            first = range[0];
            for _ in range[0]..=range[1] {
                children.push(word(&mut p)?);
            }
        }
        let mut values = Vec::new();
        if offset & HAS_VALUES != 0 {
            let count = word(&mut p)?;
            for _ in 0..count {
                let priority = word(&mut p)?;
                values.push((priority, string(&mut p)?));
            }
        }
        Ok(Node {
            prefix,
            first,
            children,
            values,
        })
    }
}

fn own(values: &[(u32, &[u8])]) -> Vec<(u32, Vec<u8>)> {
    values.iter().map(|&(p, v)| (p, v.to_vec())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(items: &[(&str, &str, u32)]) -> IndexBuilder {
        let mut b = IndexBuilder::new();
        for (k, v, p) in items {
            b.insert(k.as_bytes(), v.as_bytes(), *p).unwrap();
        }
        b
    }

    fn values(list: &[(u32, &str)]) -> Vec<(u32, Vec<u8>)> {
        list.iter()
            .map(|&(p, v)| (p, v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn empty_index_is_a_bare_root() {
        let bytes = IndexBuilder::new().write().unwrap();
        assert_eq!(
            bytes,
            [0xB0, 0x07, 0xF4, 0x57, 0, 2, 0, 1, 0, 0, 0, 12],
            "header and a root node with nothing in it"
        );
        let r = IndexReader::new(&bytes).unwrap();
        assert!(r.entries().unwrap().is_empty());
        assert!(r.get(b"").unwrap().is_empty());
    }

    #[test]
    fn hand_computed_layout() {
        // Keys "ab" and "ac": root -'a'-> node (prefix "", children b, c) -> two leaves.
        let bytes = build(&[("ab", "x", 1), ("ac", "y", 2)]).write().unwrap();
        let mut want: Vec<u8> = vec![0xB0, 0x07, 0xF4, 0x57, 0, 2, 0, 1];
        want.extend_from_slice(&[0, 0, 0, 0]); // root offset, patched below
                                               // Leaf "b" at 12: values only.
        want.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, b'x', 0]);
        // Leaf "c" at 22.
        want.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, b'y', 0]);
        // Node "a" at 32: children b..c.
        want.extend_from_slice(b"bc");
        want.extend_from_slice(&(0x4000_0000u32 | 12).to_be_bytes());
        want.extend_from_slice(&(0x4000_0000u32 | 22).to_be_bytes());
        // Root at 42: one child 'a'.
        want.extend_from_slice(b"aa");
        want.extend_from_slice(&(0x2000_0000u32 | 32).to_be_bytes());
        want[8..12].copy_from_slice(&(0x2000_0000u32 | 42).to_be_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    fn prefixes_gaps_and_values_on_inner_nodes() {
        let b = build(&[
            ("virtio_blk", "blk", 3),
            ("virtio_net", "net", 4),
            ("virtio", "core", 1),
            ("vmw_balloon", "vmw", 2),
            ("xen", "x", 0),
        ]);
        let bytes = b.write().unwrap();
        let r = IndexReader::new(&bytes).unwrap();
        assert_eq!(r.get(b"virtio").unwrap(), values(&[(1, "core")]));
        assert_eq!(r.get(b"virtio_net").unwrap(), values(&[(4, "net")]));
        assert_eq!(r.get(b"xen").unwrap(), values(&[(0, "x")]));
        for missing in ["", "v", "virti", "virtio_", "virtio_blkk", "xe", "z", "vmw"] {
            assert!(r.get(missing.as_bytes()).unwrap().is_empty(), "{missing}");
        }
        let all = r.entries().unwrap();
        let keys: Vec<&[u8]> = all.keys().map(Vec::as_slice).collect();
        assert_eq!(
            keys,
            [
                &b"virtio"[..],
                b"virtio_blk",
                b"virtio_net",
                b"vmw_balloon",
                b"xen"
            ]
        );
        // The root's children run from 'v' to 'x' with a 0 offset for 'w'.
        let root = u32::from_be_bytes(bytes[8..12].try_into().unwrap());
        assert_eq!(root & FLAGS, HAS_CHILDREN);
        let at = (root & OFFSET_MASK) as usize;
        assert_eq!(&bytes[at..at + 2], b"vx");
        assert_eq!(&bytes[at + 6..at + 10], &[0, 0, 0, 0]);
        // Below 'v' the keys split on 'i'/'m'; "virtio*" shares the prefix "rtio" after that.
        assert!(bytes.windows(5).any(|w| w == b"rtio\0"));
        assert!(!bytes.windows(6).any(|w| w == b"irtio\0"));
    }

    #[test]
    fn values_sorted_by_priority_last_added_first_among_equals() {
        let b = build(&[
            ("k", "c", 5),
            ("k", "a", 1),
            ("k", "b", 5),
            ("k", "d", 0),
            ("k", "e", 5),
        ]);
        let bytes = b.write().unwrap();
        let r = IndexReader::new(&bytes).unwrap();
        assert_eq!(
            r.get(b"k").unwrap(),
            values(&[(0, "d"), (1, "a"), (5, "e"), (5, "b"), (5, "c")])
        );
        let mut b = IndexBuilder::new();
        assert!(!b.insert(b"k", b"v", 0).unwrap());
        assert!(b.insert(b"k", b"v", 0).unwrap(), "duplicate reported");
    }

    #[test]
    fn empty_key_and_empty_values() {
        let b = build(&[("", "root", 0), ("ext4", "", 0), ("ext4", "", 0)]);
        let bytes = b.write().unwrap();
        let r = IndexReader::new(&bytes).unwrap();
        assert_eq!(r.get(b"").unwrap(), values(&[(0, "root")]));
        assert_eq!(r.get(b"ext4").unwrap(), values(&[(0, ""), (0, "")]));
    }

    #[test]
    fn layout_does_not_depend_on_key_order() {
        let keys = [
            "pci:v00001AF4d*",
            "pci:v00008086d00001234sv*",
            "pci:v00008086d*",
            "usb:v*",
            "virtio:d00000001v*",
            "virtio:d00000002v*",
            "p",
            "pci",
        ];
        let forward: Vec<(&str, &str, u32)> = keys.iter().map(|k| (*k, "m", 0)).collect();
        let backward: Vec<(&str, &str, u32)> = forward.iter().rev().copied().collect();
        let a = build(&forward).write().unwrap();
        assert_eq!(a, build(&backward).write().unwrap());
        let r = IndexReader::new(&a).unwrap();
        assert_eq!(r.entries().unwrap().len(), keys.len());
        for k in keys {
            assert_eq!(r.get(k.as_bytes()).unwrap(), values(&[(0, "m")]));
        }
    }

    #[test]
    fn bad_text_is_refused() {
        let mut b = IndexBuilder::new();
        assert!(matches!(
            b.insert("caf\u{e9}".as_bytes(), b"v", 0),
            Err(IndexError::BadText { .. })
        ));
        assert!(b.insert(b"k", b"a\0b", 0).is_err());
        assert!(b.entries().is_empty());
    }

    #[test]
    fn reader_rejects_garbage() {
        assert!(IndexReader::new(b"").is_err());
        assert!(IndexReader::new(&[0xB0, 0x07, 0xF4, 0x57, 0, 1, 0, 0, 0, 0, 0, 12]).is_err());
        let good = build(&[("ab", "x", 1), ("ac", "y", 2), ("b", "z", 0)])
            .write()
            .unwrap();
        for len in 0..good.len() {
            if let Ok(r) = IndexReader::new(&good[..len]) {
                assert!(r.entries().is_err(), "prefix of {len} bytes read");
            }
        }
        // Every single-byte change either reads or fails; none loops or panics.
        for at in 0..good.len() {
            for byte in [0u8, 1, 0x0c, 0x7f, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[at] = byte;
                if let Ok(r) = IndexReader::new(&bad) {
                    let _ = r.entries();
                    let _ = r.get(b"ab");
                }
            }
        }
    }
}
