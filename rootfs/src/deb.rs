//! Reading Debian binary packages: the control paragraph and the data tree, in pure Rust.
//!
//! Format: deb(5). A `.deb` is an ar archive of `debian-binary` (`2.0\n`), then
//! `control.tar[.xz|.zst|.gz]`, then `data.tar[.xz|.zst|.gz]`; members whose name starts with
//! `_` may sit in between and are skipped, as dpkg does. `./control` inside the control tar is
//! one deb822 paragraph (deb-control(5)).
//!
//! [`extract`] lays packages out for a merged-/usr image: `/bin`, `/sbin` and `/lib*` move
//! into `/usr`, `/etc` and `/var` become factory defaults under `/usr/share/factory`, `/boot`
//! stays (the caller takes the kernel out) and anything else is refused ([`merged_usr_path`]).
//!
//! Every package is untrusted input: nothing here panics on it, absolute and escaping paths,
//! entries beneath symlinks and device nodes are refused with an error naming the package
//! and the entry, and truncated or corrupt archives are errors, never short trees.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::Arc;

use tar::EntryType;

use crate::tree::{self, Entry, Kind, Tree, TreeError};

const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
const AR_HEADER_BYTES: usize = 60;
/// `debian-binary` holds `2.0\n`; more than this is not a package.
const DEBIAN_BINARY_MAX_BYTES: u64 = 64;
/// Real `./control` files are a few KiB.
const CONTROL_MAX_BYTES: u64 = 1 << 20; // 1 MiB
/// What the xz decoder may allocate; Debian's presets need at most 64 MiB.
const XZ_MEMLIMIT_BYTES: u64 = 1 << 30; // 1 GiB
/// Preallocation cap for file contents, so a lying tar header cannot reserve memory.
const PREALLOC_MAX_BYTES: u64 = 1 << 20; // 1 MiB
/// What the whole control.tar may decompress to (scripts, `md5sums`: a few MiB at most).
const CONTROL_TAR_MAX_BYTES: u64 = 64 << 20; // 64 MiB
/// What data.tar may decompress to besides its files' contents, between two entries: the next
/// entry's headers (with a GNU long name or pax records), or the padding after the last one.
/// Everything else a hostile stream holds (a long name of gigabytes, gigabytes of zeros after
/// the end of the archive) is refused at this point, before it costs memory or much time.
const HEADERS_MAX_BYTES: u64 = 1 << 20; // 1 MiB
/// Top-level directories the image's root provides itself; packages may list them, empty.
const ROOT_ONLY_DIRS: &[&str] = &[
    "dev", "home", "media", "mnt", "opt", "proc", "root", "run", "srv", "sys", "tmp",
];

/// The control paragraph of a binary package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub package: String,
    pub version: String,
    pub architecture: String,
    /// Every field of the paragraph (including the three above), keyed as written.
    /// Continuation lines are kept verbatim, joined with `\n`.
    pub fields: BTreeMap<String, String>,
}

/// How [`extract`] stamps entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Reproducible builds' `SOURCE_DATE_EPOCH`: no mtime ends up later than this.
    pub source_date_epoch: u64,
}

/// Why a package could not be read. Every variant names the package (or the label the
/// caller gave it) and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("{package}: truncated or corrupt .deb: {reason}")]
    Corrupt { package: String, reason: String },
    #[error("{package}: read error: {error}")]
    Io { package: String, error: io::Error },
    #[error("{package}: unsupported .deb format version {version:?} (want 2.x)")]
    FormatVersion { package: String, version: String },
    #[error("{package}: unexpected member {member:?} where {expected} belongs")]
    UnexpectedMember {
        package: String,
        member: String,
        expected: &'static str,
    },
    #[error("{package}: the .deb has no {member} member")]
    MissingMember {
        package: String,
        member: &'static str,
    },
    #[error("{package}: {member}: unsupported compression (want .xz, .zst, .gz or none)")]
    UnsupportedCompression { package: String, member: String },
    #[error("{package}: reading {member}: {error}")]
    Archive {
        package: String,
        member: String,
        error: io::Error,
    },
    #[error("{package}: control.tar has no ./control file")]
    MissingControl { package: String },
    #[error("{package}: control file: {reason}")]
    BadControl { package: String, reason: String },
    #[error("{package}: control file lacks the {field} field")]
    MissingField {
        package: String,
        field: &'static str,
    },
    #[error("{package}: entry {path:?} is not valid UTF-8")]
    NonUtf8Path { package: String, path: String },
    #[error("{package}: entry {path:?} has an absolute path")]
    AbsolutePath { package: String, path: String },
    #[error("{package}: entry {path:?} escapes the package root")]
    Escapes { package: String, path: String },
    #[error("{package}: entry {path:?} is a {kind}, which an image may not contain")]
    UnsupportedType {
        package: String,
        path: String,
        kind: String,
    },
    #[error(
        "{package}: entry {path:?} lies outside /usr, /boot, /etc, /var and the merged \
         /bin, /sbin, /lib*"
    )]
    OutsideUsr { package: String, path: String },
    #[error("{package}: top-level entry {path:?} is not a directory")]
    TopLevelNotDir { package: String, path: String },
    #[error("{package}: symlink {path:?}: {reason}")]
    BadSymlink {
        package: String,
        path: String,
        reason: &'static str,
    },
    #[error("{package}: hard link {path:?} -> {target:?}: {reason}")]
    BadHardlink {
        package: String,
        path: String,
        target: String,
        reason: &'static str,
    },
    #[error("{package}: entry {path:?}: bad {field} in tar header: {reason}")]
    BadHeader {
        package: String,
        path: String,
        field: &'static str,
        reason: String,
    },
    #[error("{package}: entry {}: {error}", tree::shown(path))]
    Tree {
        package: String,
        path: String,
        error: TreeError,
    },
}

/// A path that has no place in a merged-/usr image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path {path:?} lies outside /usr and the directories merged into it")]
pub struct OutsideUsr {
    pub path: String,
}

/// Where a package path goes in a merged-/usr image: `bin/x` → `usr/bin/x` (likewise `sbin`,
/// `lib`, `lib32`, `lib64`, `libx32`), `etc/x` → `usr/share/factory/etc/x` (likewise `var`),
/// `usr/…` and `boot/…` unchanged. The root itself and the bare top-level directories the
/// image's root provides (`opt`, `srv`, `home`, `tmp`, …) give `Ok(None)`: skip them. Anything
/// beneath those, any other top-level name and escaping paths are [`OutsideUsr`].
pub fn merged_usr_path(path: &str) -> Result<Option<String>, OutsideUsr> {
    let outside = || OutsideUsr {
        path: path.to_string(),
    };
    let norm = tree::normalize(path).map_err(|_| outside())?;
    let (top, rest) = norm.split_once('/').unwrap_or((&norm, ""));
    match top {
        "" => Ok(None),
        "usr" | "boot" => Ok(Some(norm.clone())),
        "bin" | "sbin" | "lib" | "lib32" | "lib64" | "libx32" => Ok(Some(format!("usr/{norm}"))),
        "etc" | "var" => Ok(Some(format!("usr/share/factory/{norm}"))),
        t if rest.is_empty() && ROOT_ONLY_DIRS.contains(&t) => Ok(None),
        _ => Err(outside()),
    }
}

/// Read the control paragraph of a `.deb` held in memory.
///
/// Errors name the package as `<unnamed .deb>`; use [`read_control_from`] to give a label.
pub fn read_control(deb: &[u8]) -> Result<Control, DebError> {
    read_control_from(deb, "<unnamed .deb>")
}

/// Read the control paragraph of a `.deb` streamed from `reader`, labelling errors with
/// `name`. Reads up to the end of the data member (without decompressing it), so a package
/// whose ar framing is cut short is an error; stops there.
pub fn read_control_from(reader: impl Read, name: &str) -> Result<Control, DebError> {
    let mut ar = DebReader::open(reader, name)?;
    let (header, comp) = ar.next_part(Part::Control)?;
    let control = ar.read_member(&header, |r| read_control_tar(name, &header.name, comp, r))?;
    let (header, _) = ar.next_part(Part::Data)?;
    ar.read_member(&header, |_| Ok(()))?;
    Ok(control)
}

/// Extract the data tree of `deb` into `tree`, merged-/usr mapped (see [`merged_usr_path`]),
/// `name` labelling errors. Modes keep the `0o7777` bits, uid and gid come from the archive,
/// mtimes are clamped to `opts.source_date_epoch`. Returns how many entries were inserted
/// (skipped top-level directories not counted). On error `tree` may hold part of the package.
pub fn extract(
    deb: &[u8],
    name: &str,
    tree: &mut Tree,
    opts: &ExtractOptions,
) -> Result<usize, DebError> {
    let mut ar = DebReader::open(deb, name)?;
    let (header, _) = ar.next_part(Part::Control)?;
    ar.read_member(&header, |_| Ok(()))?;
    let (header, comp) = ar.next_part(Part::Data)?;
    let ctx = Extractor {
        package: name,
        member: &header.name,
        opts,
    };
    ar.read_member(&header, |r| ctx.extract_tar(comp, r, tree))
}

// ---------------------------------------------------------------------------------------
// The ar layer

/// The two tar members of a package, in archive order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Control,
    Data,
}

impl Part {
    fn prefix(self) -> &'static str {
        match self {
            Part::Control => "control.tar",
            Part::Data => "data.tar",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    fn from_suffix(suffix: &str) -> Option<Self> {
        match suffix {
            "" => Some(Compression::None),
            ".gz" => Some(Compression::Gzip),
            ".xz" => Some(Compression::Xz),
            ".zst" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Wrap `r` in the matching decompressor.
    fn decoder<'a>(self, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(r),
            Compression::Gzip => Box::new(flate2::read::GzDecoder::new(r)),
            Compression::Xz => {
                let flags = liblzma::stream::CONCATENATED;
                let stream = liblzma::stream::Stream::new_stream_decoder(XZ_MEMLIMIT_BYTES, flags)?;
                Box::new(liblzma::read::XzDecoder::new_stream(r, stream))
            }
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        })
    }
}

/// One ar member header.
#[derive(Debug)]
struct MemberHeader {
    name: String,
    size: u64,
}

/// Parse a 60-byte ar member header: name[16] mtime[12] uid[6] gid[6] mode[8] size[10] "`\n".
fn parse_member_header(buf: &[u8; AR_HEADER_BYTES]) -> Result<MemberHeader, String> {
    if &buf[58..] != b"`\n" {
        return Err("bad ar member header magic".to_string());
    }
    let raw_name = trim_spaces(&buf[..16]);
    let raw_name = raw_name.strip_suffix(b"/").unwrap_or(raw_name);
    let name = std::str::from_utf8(raw_name)
        .ok()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("bad ar member name {:?}", String::from_utf8_lossy(raw_name)))?;
    let raw_size = trim_spaces(&buf[48..58]);
    let size = std::str::from_utf8(raw_size)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| {
            format!(
                "bad size {:?} of ar member {name:?}",
                String::from_utf8_lossy(raw_size)
            )
        })?;
    Ok(MemberHeader {
        name: name.to_string(),
        size,
    })
}

fn trim_spaces(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
    &b[..end]
}

/// Fill `buf` as far as the reader goes; returns how many bytes were read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A reader limited to one ar member's bytes.
struct Limited<'a, R> {
    inner: &'a mut R,
    remaining: u64,
}

impl<R: Read> Read for Limited<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if max == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..max])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The ar stream of a `.deb`, positioned after `debian-binary`.
struct DebReader<'p, R> {
    inner: R,
    package: &'p str,
}

impl<'p, R: Read> DebReader<'p, R> {
    /// Check the ar magic and the `debian-binary` member.
    fn open(inner: R, package: &'p str) -> Result<Self, DebError> {
        let mut ar = DebReader { inner, package };
        let mut magic = [0u8; 8];
        let n = read_up_to(&mut ar.inner, &mut magic).map_err(|e| ar.io(e))?;
        if n < magic.len() || &magic != AR_MAGIC {
            return Err(ar.corrupt("not an ar archive".to_string()));
        }
        let header = ar
            .next_header()?
            .ok_or_else(|| ar.missing("debian-binary"))?;
        if header.name != "debian-binary" {
            return Err(ar.unexpected(header.name, "debian-binary"));
        }
        let content = ar.read_member(&header, |r| {
            let mut content = Vec::new();
            r.take(DEBIAN_BINARY_MAX_BYTES)
                .read_to_end(&mut content)
                .map_err(|e| ar_io(package, e))?;
            Ok(content)
        })?;
        if !content.starts_with(b"2.") {
            let version = String::from_utf8_lossy(&content).trim().to_string();
            return Err(DebError::FormatVersion {
                package: package.to_string(),
                version,
            });
        }
        Ok(ar)
    }

    /// The next member header, or `None` at the end of the archive.
    fn next_header(&mut self) -> Result<Option<MemberHeader>, DebError> {
        let mut buf = [0u8; AR_HEADER_BYTES];
        match read_up_to(&mut self.inner, &mut buf).map_err(|e| self.io(e))? {
            0 => Ok(None),
            AR_HEADER_BYTES => parse_member_header(&buf)
                .map(Some)
                .map_err(|r| self.corrupt(r)),
            n => Err(self.corrupt(format!("ar member header cut short after {n} bytes"))),
        }
    }

    /// The next member that is `part`, skipping `_`-prefixed members, with its compression.
    fn next_part(&mut self, part: Part) -> Result<(MemberHeader, Compression), DebError> {
        loop {
            let header = self
                .next_header()?
                .ok_or_else(|| self.missing(part.prefix()))?;
            if header.name.starts_with('_') {
                self.read_member(&header, |_| Ok(()))?;
                continue;
            }
            let Some(suffix) = header.name.strip_prefix(part.prefix()) else {
                return Err(self.unexpected(header.name, part.prefix()));
            };
            let comp = Compression::from_suffix(suffix).ok_or_else(|| {
                DebError::UnsupportedCompression {
                    package: self.package.to_string(),
                    member: header.name.clone(),
                }
            })?;
            return Ok((header, comp));
        }
    }

    /// Hand the member's bytes to `f`, then skip what `f` left and the padding byte. A member
    /// cut short is reported as such even when `f` failed first (it saw the short stream).
    fn read_member<T>(
        &mut self,
        header: &MemberHeader,
        f: impl FnOnce(&mut dyn Read) -> Result<T, DebError>,
    ) -> Result<T, DebError> {
        let mut member = Limited {
            inner: &mut self.inner,
            remaining: header.size,
        };
        let out = f(&mut member);
        let drained = io::copy(&mut member, &mut io::sink());
        let remaining = member.remaining;
        if remaining > 0 {
            let got = header.size - remaining;
            let reason = format!(
                "member {} is cut short ({got} of {} bytes)",
                header.name, header.size
            );
            return Err(self.corrupt(reason));
        }
        drained.map_err(|e| self.io(e))?;
        let out = out?;
        if header.size % 2 == 1 {
            self.skip_padding(&header.name)?;
        }
        Ok(out)
    }

    /// Odd-sized members are followed by `\n`; its absence at the very end is tolerated.
    fn skip_padding(&mut self, member: &str) -> Result<(), DebError> {
        let mut pad = [0u8; 1];
        match read_up_to(&mut self.inner, &mut pad).map_err(|e| self.io(e))? {
            1 if pad[0] != b'\n' => {
                Err(self.corrupt(format!("bad padding byte after member {member}")))
            }
            _ => Ok(()),
        }
    }

    fn corrupt(&self, reason: String) -> DebError {
        DebError::Corrupt {
            package: self.package.to_string(),
            reason,
        }
    }

    fn io(&self, error: io::Error) -> DebError {
        ar_io(self.package, error)
    }

    fn missing(&self, member: &'static str) -> DebError {
        DebError::MissingMember {
            package: self.package.to_string(),
            member,
        }
    }

    fn unexpected(&self, member: String, expected: &'static str) -> DebError {
        DebError::UnexpectedMember {
            package: self.package.to_string(),
            member,
            expected,
        }
    }
}

fn ar_io(package: &str, error: io::Error) -> DebError {
    DebError::Io {
        package: package.to_string(),
        error,
    }
}

/// Records whether the tar reader ever met the end of its input: a well-formed tar stops at
/// its end-of-archive block before that, so meeting it means the archive was cut short.
struct EofWatch<R> {
    inner: R,
    hit_eof: bool,
}

/// How many more decompressed bytes the tar reader may take: set by whoever reads the
/// entries, as each entry tells how much data follows it ([`Bounded`]).
#[derive(Clone)]
struct Allowance {
    left: Rc<Cell<u64>>,
    /// What exceeding it means, for the error.
    what: &'static str,
}

impl Allowance {
    fn new(bytes: u64, what: &'static str) -> Allowance {
        Allowance {
            left: Rc::new(Cell::new(bytes)),
            what,
        }
    }

    fn set(&self, bytes: u64) {
        self.left.set(bytes);
    }
}

/// A decompressed stream that fails once it has given more than its [`Allowance`]: a
/// decompression bomb costs at most the allowance in memory and time.
struct Bounded<R> {
    inner: R,
    allowance: Allowance,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.allowance.left.get();
        if left == 0 && !buf.is_empty() {
            // One byte more tells a stream that ends here from one that goes on.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(self.allowance.what)),
            };
        }
        let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.allowance.left.set(left - n as u64);
        Ok(n)
    }
}

impl<R: Read> Read for EofWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hit_eof |= n == 0 && !buf.is_empty();
        Ok(n)
    }
}

type TarEntry<'e, 'a> = tar::Entry<'e, EofWatch<Bounded<Box<dyn Read + 'a>>>>;

/// Decompress `r` and hand every tar entry to `each`. Then insist on the end-of-archive block
/// and read the decompressor to its end, so a truncated or corrupt stream is an error even
/// when the entries themselves looked complete. `on_err` labels archive errors. The tar reader
/// gets no more decompressed bytes than `allowance` says (`each` may renew it).
fn for_each_entry<'a>(
    comp: Compression,
    r: &'a mut dyn Read,
    allowance: &Allowance,
    on_err: &dyn Fn(io::Error) -> DebError,
    mut each: impl FnMut(&mut TarEntry<'_, 'a>) -> Result<(), DebError>,
) -> Result<(), DebError> {
    let input = EofWatch {
        inner: Bounded {
            inner: comp.decoder(r).map_err(on_err)?,
            allowance: allowance.clone(),
        },
        hit_eof: false,
    };
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(on_err)? {
        each(&mut entry.map_err(on_err)?)?;
    }
    let mut input = archive.into_inner();
    if input.hit_eof {
        let msg = "tar archive ends without its end-of-archive block";
        return Err(on_err(io::Error::new(io::ErrorKind::UnexpectedEof, msg)));
    }
    io::copy(&mut input.inner, &mut io::sink()).map_err(on_err)?;
    Ok(())
}

/// Read an entry's contents, failing unless exactly `size` bytes arrive.
fn read_exact_size(r: &mut impl Read, size: u64) -> io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(usize::try_from(size.min(PREALLOC_MAX_BYTES)).unwrap_or(0));
    r.take(size).read_to_end(&mut data)?;
    if data.len() as u64 != size {
        let msg = format!("file data cut short ({} of {size} bytes)", data.len());
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg));
    }
    Ok(data)
}

// ---------------------------------------------------------------------------------------
// control.tar

fn read_control_tar(
    package: &str,
    member: &str,
    comp: Compression,
    r: &mut dyn Read,
) -> Result<Control, DebError> {
    let archive_err = |error| DebError::Archive {
        package: package.to_string(),
        member: member.to_string(),
        error,
    };
    let mut text = None;
    let allowance = Allowance::new(
        CONTROL_TAR_MAX_BYTES,
        "control.tar decompresses to more than 64 MiB",
    );
    for_each_entry(comp, r, &allowance, &archive_err, |entry| {
        let is_control = std::str::from_utf8(&entry.path_bytes())
            .is_ok_and(|p| !p.starts_with('/') && tree::normalize(p).is_ok_and(|n| n == "control"));
        if text.is_some() || !is_control || entry.header().entry_type() != EntryType::Regular {
            return Ok(());
        }
        let size = entry.size();
        if size > CONTROL_MAX_BYTES {
            let reason = format!("larger than {CONTROL_MAX_BYTES} bytes");
            return Err(DebError::BadControl {
                package: package.to_string(),
                reason,
            });
        }
        text = Some(read_exact_size(entry, size).map_err(archive_err)?);
        Ok(())
    })?;
    let text = text.ok_or_else(|| DebError::MissingControl {
        package: package.to_string(),
    })?;
    parse_control(package, &text)
}

/// Parse `./control` and pick out the three fields every package has.
fn parse_control(package: &str, text: &[u8]) -> Result<Control, DebError> {
    let bad = |reason: String| DebError::BadControl {
        package: package.to_string(),
        reason,
    };
    let text = std::str::from_utf8(text).map_err(|_| bad("not UTF-8".to_string()))?;
    let fields = parse_paragraph(text).map_err(bad)?;
    let field = |name: &'static str| {
        fields
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_empty())
            .map(|(_, v)| v.clone())
            .ok_or_else(|| DebError::MissingField {
                package: package.to_string(),
                field: name,
            })
    };
    let (package_name, version, architecture) =
        (field("Package")?, field("Version")?, field("Architecture")?);
    crate::version::parse(&version).map_err(|e| bad(e.to_string()))?;
    Ok(Control {
        package: package_name,
        version,
        architecture,
        fields,
    })
}

/// Parse one deb822 paragraph: `Name: value` lines, continuation lines starting with a space
/// or tab, blank lines only around it. Field names are unique, compared case-insensitively.
fn parse_paragraph(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<&str> = None;
    let mut ended = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            ended = !fields.is_empty();
            continue;
        }
        if ended {
            return Err(format!("line {n}: more than one paragraph"));
        }
        if line.starts_with([' ', '\t']) {
            let value = last
                .and_then(|k| fields.get_mut(k))
                .ok_or_else(|| format!("line {n}: continuation line before any field"))?;
            value.push('\n');
            value.push_str(line.trim_end());
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("line {n}: not a field"))?;
        if !is_field_name(name) {
            return Err(format!("line {n}: bad field name {name:?}"));
        }
        if fields.keys().any(|k| k.eq_ignore_ascii_case(name)) {
            return Err(format!("line {n}: duplicate field {name}"));
        }
        fields.insert(name.to_string(), value.trim().to_string());
        last = Some(name);
    }
    Ok(fields)
}

fn is_field_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with(['#', '-']) && name.bytes().all(|b| b.is_ascii_graphic())
}

// ---------------------------------------------------------------------------------------
// data.tar

/// What every data entry conversion needs to know.
struct Extractor<'a> {
    package: &'a str,
    member: &'a str,
    opts: &'a ExtractOptions,
}

/// An entry's archive path, as written (`raw`) and normalised (`norm`).
struct EntryPath {
    raw: String,
    norm: String,
}

impl Extractor<'_> {
    fn extract_tar(
        &self,
        comp: Compression,
        r: &mut dyn Read,
        tree: &mut Tree,
    ) -> Result<usize, DebError> {
        let mut count = 0;
        let allowance = Allowance::new(
            HEADERS_MAX_BYTES,
            "the archive decompresses to more than its entries account for (over 1 MiB of \
             headers or of data after its end): refused as a decompression bomb",
        );
        for_each_entry(comp, r, &allowance, &|e| self.archive_err(e), |entry| {
            // This entry's data, its padding, then the next entry's headers: no more.
            let size = self.data_size(entry, tree)?;
            allowance.set(size.div_ceil(512) * 512 + HEADERS_MAX_BYTES);
            let Some((path, target, item)) = self.convert(entry)? else {
                return Ok(());
            };
            tree.insert(&target, item).map_err(|error| DebError::Tree {
                package: self.package.to_string(),
                path: path.raw,
                error,
            })?;
            count += 1;
            Ok(())
        })?;
        Ok(count)
    }

    /// The size of the data following an entry's header, once it is known to fit: regular
    /// files within what `tree` may still hold, anything else without data (GNU tar writes
    /// none; a size there would only make the reader skip that much).
    fn data_size<R: Read>(&self, entry: &tar::Entry<'_, R>, tree: &Tree) -> Result<u64, DebError> {
        let size = entry.size();
        let ty = entry.header().entry_type();
        let raw = || String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        match ty {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                tree.check_room(&raw(), size)
                    .map_err(|error| DebError::Tree {
                        package: self.package.to_string(),
                        path: raw(),
                        error,
                    })?;
            }
            EntryType::XGlobalHeader if size <= HEADERS_MAX_BYTES => {}
            _ if size == 0 => {}
            _ => {
                return Err(DebError::BadHeader {
                    package: self.package.to_string(),
                    path: raw(),
                    field: "size",
                    reason: format!("a {} with {size} bytes of data", type_name(ty)),
                })
            }
        }
        Ok(size)
    }

    /// Turn one tar entry into (path, mapped path, tree entry), or `None` to skip it.
    fn convert<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<Option<(EntryPath, String, Entry)>, DebError> {
        let path = self.entry_path(&entry.path_bytes())?;
        let ty = entry.header().entry_type();
        if ty == EntryType::XGlobalHeader {
            return Ok(None); // pax metadata for the archive, not a file
        }
        let (package, raw) = (self.package.to_string(), path.raw.clone());
        let supported = [
            EntryType::Directory,
            EntryType::Regular,
            EntryType::Symlink,
            EntryType::Link,
        ];
        if !supported.contains(&ty) {
            let kind = type_name(ty);
            return Err(DebError::UnsupportedType {
                package,
                path: raw,
                kind,
            });
        }
        if ty != EntryType::Directory && !path.norm.contains('/') {
            return Err(DebError::TopLevelNotDir { package, path: raw });
        }
        let target = match merged_usr_path(&path.norm) {
            Ok(Some(target)) => target,
            Ok(None) => return Ok(None),
            Err(_) => return Err(DebError::OutsideUsr { package, path: raw }),
        };
        let kind = match ty {
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink => {
                Kind::Symlink(self.symlink_target(&path, entry.link_name_bytes())?)
            }
            EntryType::Link => {
                Kind::Hardlink(self.hardlink_target(&path, entry.link_name_bytes())?)
            }
            _ => Kind::File(Arc::new(self.file_data(&path, entry)?)),
        };
        let item = self.metadata(&path, entry.header(), kind)?;
        Ok(Some((path, target, item)))
    }

    /// Check the raw archive path: UTF-8, relative, not escaping.
    fn entry_path(&self, raw: &[u8]) -> Result<EntryPath, DebError> {
        let package = self.package.to_string();
        let Ok(raw) = std::str::from_utf8(raw) else {
            let path = String::from_utf8_lossy(raw).into_owned();
            return Err(DebError::NonUtf8Path { package, path });
        };
        let path = raw.to_string();
        if raw.starts_with('/') {
            return Err(DebError::AbsolutePath { package, path });
        }
        match tree::normalize(raw) {
            Ok(norm) => Ok(EntryPath { raw: path, norm }),
            Err(_) => Err(DebError::Escapes { package, path }),
        }
    }

    fn symlink_target(
        &self,
        path: &EntryPath,
        link: Option<Cow<'_, [u8]>>,
    ) -> Result<String, DebError> {
        let bad = |reason| DebError::BadSymlink {
            package: self.package.to_string(),
            path: path.raw.clone(),
            reason,
        };
        let link = link
            .filter(|l| !l.is_empty())
            .ok_or_else(|| bad("empty target"))?;
        let target = std::str::from_utf8(&link).map_err(|_| bad("target is not UTF-8"))?;
        if target.contains('\0') {
            return Err(bad("target contains a NUL byte"));
        }
        Ok(target.to_string()) // data, never followed: stored verbatim
    }

    /// A hard link's target is another archive path: same checks and mapping as entries.
    fn hardlink_target(
        &self,
        path: &EntryPath,
        link: Option<Cow<'_, [u8]>>,
    ) -> Result<String, DebError> {
        let link = link.unwrap_or_default();
        let target = String::from_utf8_lossy(&link).into_owned();
        let bad = |reason| DebError::BadHardlink {
            package: self.package.to_string(),
            path: path.raw.clone(),
            target: target.clone(),
            reason,
        };
        let raw = std::str::from_utf8(&link).map_err(|_| bad("target is not UTF-8"))?;
        if raw.is_empty() {
            return Err(bad("empty target"));
        }
        if raw.starts_with('/') {
            return Err(bad("absolute target"));
        }
        let norm = tree::normalize(raw).map_err(|_| bad("target escapes the package root"))?;
        match merged_usr_path(&norm) {
            Ok(Some(mapped)) => Ok(mapped),
            Ok(None) => Err(bad("target is not a file")),
            Err(_) => Err(bad("target lies outside /usr")),
        }
    }

    fn file_data<R: Read>(
        &self,
        path: &EntryPath,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<Vec<u8>, DebError> {
        let size = entry.size();
        read_exact_size(entry, size).map_err(|error| DebError::Archive {
            package: self.package.to_string(),
            member: format!("{} (entry {:?})", self.member, path.raw),
            error,
        })
    }

    /// Mode (`0o7777` bits), owner and clamped mtime from the tar header.
    fn metadata(
        &self,
        path: &EntryPath,
        header: &tar::Header,
        kind: Kind,
    ) -> Result<Entry, DebError> {
        let bad = |field, reason: String| DebError::BadHeader {
            package: self.package.to_string(),
            path: path.raw.clone(),
            field,
            reason,
        };
        let mode = header.mode().map_err(|e| bad("mode", e.to_string()))? & 0o7777;
        let id = |field, value: io::Result<u64>| {
            let value = value.map_err(|e| bad(field, e.to_string()))?;
            u32::try_from(value).map_err(|_| bad(field, format!("{value} does not fit in 32 bits")))
        };
        let uid = id("uid", header.uid())?;
        let gid = id("gid", header.gid())?;
        let mtime = header.mtime().map_err(|e| bad("mtime", e.to_string()))?;
        Ok(Entry {
            kind,
            mode,
            uid,
            gid,
            mtime: mtime.min(self.opts.source_date_epoch),
        })
    }

    fn archive_err(&self, error: io::Error) -> DebError {
        DebError::Archive {
            package: self.package.to_string(),
            member: self.member.to_string(),
            error,
        }
    }
}

fn type_name(ty: EntryType) -> String {
    match ty {
        EntryType::Directory => "directory".to_string(),
        EntryType::Symlink => "symlink".to_string(),
        EntryType::Link => "hard link".to_string(),
        EntryType::Char => "character device".to_string(),
        EntryType::Block => "block device".to_string(),
        EntryType::Fifo => "fifo".to_string(),
        EntryType::Continuous => "contiguous file".to_string(),
        EntryType::GNUSparse => "sparse file".to_string(),
        other => format!("tar entry of type {:?}", char::from(other.as_byte())),
    }
}

#[cfg(test)]
mod hostile_tests;

/// Builders for in-memory `.deb` files, shared with the pool tests.
#[cfg(test)]
pub(crate) mod test_support {
    use std::io::Write;

    /// How a test compresses its tar members.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Compress {
        None,
        Gz,
        Xz,
        Zst,
    }

    impl Compress {
        pub const ALL: [Compress; 4] = [Compress::None, Compress::Gz, Compress::Xz, Compress::Zst];

        pub fn suffix(self) -> &'static str {
            match self {
                Compress::None => "",
                Compress::Gz => ".gz",
                Compress::Xz => ".xz",
                Compress::Zst => ".zst",
            }
        }

        pub fn apply(self, data: &[u8]) -> Vec<u8> {
            match self {
                Compress::None => data.to_vec(),
                Compress::Gz => {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                    e.write_all(data).unwrap();
                    e.finish().unwrap()
                }
                Compress::Xz => {
                    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
                    e.write_all(data).unwrap();
                    e.finish().unwrap()
                }
                Compress::Zst => zstd::encode_all(data, 3).unwrap(),
            }
        }
    }

    #[derive(Debug, Clone)]
    pub enum ItemKind {
        Dir,
        File(Vec<u8>),
        Symlink(Vec<u8>),
        Hardlink(Vec<u8>),
        Char,
        Fifo,
    }

    /// One tar entry, written with a raw header so hostile names survive.
    #[derive(Debug, Clone)]
    pub struct Item {
        pub path: Vec<u8>,
        pub kind: ItemKind,
        pub mode: u32,
        pub uid: u64,
        pub gid: u64,
        pub mtime: u64,
    }

    impl Item {
        fn new(path: impl AsRef<[u8]>, kind: ItemKind, mode: u32) -> Item {
            Item {
                path: path.as_ref().to_vec(),
                kind,
                mode,
                uid: 0,
                gid: 0,
                mtime: 1000,
            }
        }
        pub fn dir(path: impl AsRef<[u8]>) -> Item {
            Item::new(path, ItemKind::Dir, 0o755)
        }
        pub fn file(path: impl AsRef<[u8]>, data: &[u8]) -> Item {
            Item::new(path, ItemKind::File(data.to_vec()), 0o644)
        }
        pub fn symlink(path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Item {
            Item::new(path, ItemKind::Symlink(target.as_ref().to_vec()), 0o777)
        }
        pub fn hardlink(path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Item {
            Item::new(path, ItemKind::Hardlink(target.as_ref().to_vec()), 0o644)
        }
        pub fn char_dev(path: impl AsRef<[u8]>) -> Item {
            Item::new(path, ItemKind::Char, 0o666)
        }
        pub fn fifo(path: impl AsRef<[u8]>) -> Item {
            Item::new(path, ItemKind::Fifo, 0o644)
        }
        pub fn mode(mut self, mode: u32) -> Item {
            self.mode = mode;
            self
        }
        pub fn owner(mut self, uid: u64, gid: u64) -> Item {
            self.uid = uid;
            self.gid = gid;
            self
        }
        pub fn mtime(mut self, mtime: u64) -> Item {
            self.mtime = mtime;
            self
        }
    }

    /// A tar archive of `items`, headers written byte by byte (no path checks).
    pub fn tar(items: &[Item]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for item in items {
            let mut header = tar::Header::new_gnu();
            let gnu = header.as_gnu_mut().unwrap();
            gnu.name[..item.path.len()].copy_from_slice(&item.path);
            let (ty, data, link): (tar::EntryType, &[u8], &[u8]) = match &item.kind {
                ItemKind::Dir => (tar::EntryType::Directory, b"", b""),
                ItemKind::File(d) => (tar::EntryType::Regular, d, b""),
                ItemKind::Symlink(t) => (tar::EntryType::Symlink, b"", t),
                ItemKind::Hardlink(t) => (tar::EntryType::Link, b"", t),
                ItemKind::Char => (tar::EntryType::Char, b"", b""),
                ItemKind::Fifo => (tar::EntryType::Fifo, b"", b""),
            };
            gnu.linkname[..link.len()].copy_from_slice(link);
            header.set_entry_type(ty);
            header.set_size(data.len() as u64);
            header.set_mode(item.mode);
            header.set_uid(item.uid);
            header.set_gid(item.gid);
            header.set_mtime(item.mtime);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// An ar archive of `(name, content)` members, in order.
    pub fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = ar::Builder::new(Vec::new());
        for (name, data) in members {
            let header = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    pub fn control_tar(control: &str, c: Compress) -> Vec<u8> {
        c.apply(&tar(&[
            Item::dir("./"),
            Item::file("./control", control.as_bytes()),
        ]))
    }

    /// A well-formed package with both tars compressed by `c`.
    pub fn build_deb(control: &str, items: &[Item], c: Compress) -> Vec<u8> {
        let control = control_tar(control, c);
        let data = c.apply(&tar(items));
        ar(&[
            ("debian-binary", b"2.0\n"),
            (&format!("control.tar{}", c.suffix()), &control),
            (&format!("data.tar{}", c.suffix()), &data),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{ar, build_deb, control_tar, tar, Compress, Item};
    use super::*;
    use proptest::prelude::*;

    const EPOCH: u64 = 1_700_000_000;
    const OPTS: ExtractOptions = ExtractOptions {
        source_date_epoch: EPOCH,
    };
    const CONTROL: &str = "Package: hello\nVersion: 1:2.10-3+b1\nArchitecture: amd64\n\
        Depends: libc6 (>= 2.34)\nDescription: example package\n a longer\n .\n description\n";

    fn extract_new(deb: &[u8]) -> Result<(Tree, usize), DebError> {
        let mut tree = Tree::new();
        let n = extract(deb, "hello", &mut tree, &OPTS)?;
        Ok((tree, n))
    }

    /// Like `extract_new` without the tree, so failed assertions print something short.
    fn count(deb: &[u8]) -> Result<usize, DebError> {
        extract_new(deb).map(|(_, n)| n)
    }

    fn entry(kind: Kind, mode: u32, uid: u32, gid: u32, mtime: u64) -> Entry {
        Entry {
            kind,
            mode,
            uid,
            gid,
            mtime,
        }
    }

    fn file(data: &[u8]) -> Kind {
        Kind::File(Arc::new(data.to_vec()))
    }

    fn normal_items() -> Vec<Item> {
        vec![
            Item::dir("./").mtime(100),
            Item::dir("./usr/"),
            Item::dir("./usr/bin/"),
            Item::file("./usr/bin/tool", b"#!tool")
                .mode(0o104755)
                .mtime(2_000_000_000),
            Item::file("./usr/share/doc/hello/x", b"doc")
                .mode(0o640)
                .owner(1000, 100)
                .mtime(5),
            Item::symlink("./usr/bin/link", "tool"),
            Item::symlink("./usr/bin/abs", "/etc/alternatives/abs"),
            Item::hardlink("./usr/bin/tool2", "./usr/bin/tool").mode(0o4755),
            Item::dir("usr/lib/").mode(0o2775).owner(0, 50),
        ]
    }

    #[test]
    fn normal_package_in_every_compression() {
        let mut first = None;
        for c in Compress::ALL {
            let deb = build_deb(CONTROL, &normal_items(), c);
            let (tree, n) = extract_new(&deb).unwrap_or_else(|e| panic!("{c:?}: {e}"));
            assert_eq!(n, 8, "{c:?}: the root is skipped");
            let want: &[(&str, Entry)] = &[
                ("usr", entry(Kind::Dir, 0o755, 0, 0, 1000)),
                ("usr/bin", entry(Kind::Dir, 0o755, 0, 0, 1000)),
                (
                    "usr/bin/abs",
                    entry(
                        Kind::Symlink("/etc/alternatives/abs".into()),
                        0o777,
                        0,
                        0,
                        1000,
                    ),
                ),
                (
                    "usr/bin/link",
                    entry(Kind::Symlink("tool".into()), 0o777, 0, 0, 1000),
                ),
                ("usr/bin/tool", entry(file(b"#!tool"), 0o4755, 0, 0, EPOCH)),
                (
                    "usr/bin/tool2",
                    entry(Kind::Hardlink("usr/bin/tool".into()), 0o4755, 0, 0, 1000),
                ),
                ("usr/lib", entry(Kind::Dir, 0o2775, 0, 50, 1000)),
                ("usr/share", entry(Kind::Dir, 0o755, 0, 0, 5)),
                ("usr/share/doc", entry(Kind::Dir, 0o755, 0, 0, 5)),
                ("usr/share/doc/hello", entry(Kind::Dir, 0o755, 0, 0, 5)),
                (
                    "usr/share/doc/hello/x",
                    entry(file(b"doc"), 0o640, 1000, 100, 5),
                ),
            ];
            let got: Vec<(&str, &Entry)> = tree.iter().map(|(k, e)| (k.as_str(), e)).collect();
            let want: Vec<(&str, &Entry)> = want.iter().map(|(k, e)| (*k, e)).collect();
            assert_eq!(got, want, "{c:?}");
            match &first {
                None => first = Some(tree),
                Some(t) => assert_eq!(t, &tree, "{c:?} differs from the first compression"),
            }
        }
    }

    #[test]
    fn merged_usr_layout() {
        let items = [
            Item::dir("./"),
            Item::dir("./bin/"),
            Item::file("./bin/busybox", b"bb").mode(0o755),
            Item::hardlink("./bin/sh", "./bin/busybox"),
            Item::dir("./sbin/"),
            Item::symlink("./sbin/init", "/bin/busybox"),
            Item::file("./lib/modules/6.1/kernel/x.ko", b"ko"),
            Item::symlink(
                "./lib64/ld-linux-x86-64.so.2",
                "/lib/x86_64-linux-gnu/ld.so",
            ),
            Item::dir("./etc/").mode(0o700),
            Item::file("./etc/foo", b"foo=1"),
            Item::file("./var/lib/hello/state", b"s"),
            Item::file("./boot/vmlinuz-6.1", b"kernel"),
            Item::dir("./opt/"),
            Item::dir("./srv"),
            Item::file("./usr/share/doc/hello/copyright", b"c"),
        ];
        let deb = build_deb(CONTROL, &items, Compress::Xz);
        let (tree, n) = extract_new(&deb).unwrap();
        assert_eq!(n, items.len() - 3, "./, ./opt/ and ./srv are skipped");
        let kind = |p: &str| tree.get(p).map(|e| e.kind.clone());
        assert_eq!(kind("usr/bin/busybox"), Some(file(b"bb")));
        assert_eq!(
            kind("usr/bin/sh"),
            Some(Kind::Hardlink("usr/bin/busybox".into()))
        );
        assert_eq!(
            kind("usr/sbin/init"),
            Some(Kind::Symlink("/bin/busybox".into()))
        );
        assert_eq!(kind("usr/lib/modules/6.1/kernel/x.ko"), Some(file(b"ko")));
        assert!(kind("usr/lib64/ld-linux-x86-64.so.2").is_some());
        assert_eq!(kind("usr/share/factory/etc/foo"), Some(file(b"foo=1")));
        assert_eq!(tree.get("usr/share/factory/etc").unwrap().mode, 0o700);
        assert_eq!(
            kind("usr/share/factory/var/lib/hello/state"),
            Some(file(b"s"))
        );
        assert_eq!(kind("boot/vmlinuz-6.1"), Some(file(b"kernel")));
        assert_eq!(kind("usr/share/doc/hello/copyright"), Some(file(b"c")));
        let tops: Vec<&str> = tree
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !k.contains('/'))
            .collect();
        assert_eq!(tops, ["boot", "usr"]);
    }

    #[test]
    fn merged_usr_path_table() {
        let some = |s: &str| Ok(Some(s.to_string()));
        let cases: &[(&str, Result<Option<String>, ()>)] = &[
            ("", Ok(None)),
            ("./", Ok(None)),
            ("bin", some("usr/bin")),
            ("bin/busybox", some("usr/bin/busybox")),
            ("./bin/busybox", some("usr/bin/busybox")),
            ("sbin/init", some("usr/sbin/init")),
            ("lib/x", some("usr/lib/x")),
            ("lib32/x", some("usr/lib32/x")),
            ("lib64/x", some("usr/lib64/x")),
            ("libx32/x", some("usr/libx32/x")),
            ("etc", some("usr/share/factory/etc")),
            ("etc/foo", some("usr/share/factory/etc/foo")),
            ("var/lib/x", some("usr/share/factory/var/lib/x")),
            ("usr", some("usr")),
            ("usr/bin/x", some("usr/bin/x")),
            ("boot", some("boot")),
            ("boot/vmlinuz", some("boot/vmlinuz")),
            ("opt", Ok(None)),
            ("tmp", Ok(None)),
            ("home", Ok(None)),
            ("opt/x", Err(())),
            ("srv/x", Err(())),
            ("home/x", Err(())),
            ("tmp/x", Err(())),
            ("x", Err(())),
            ("library/x", Err(())),
            ("binx/x", Err(())),
            ("usr/../../x", Err(())),
        ];
        for (input, want) in cases {
            let got = merged_usr_path(input).map_err(|e| assert_eq!(e.path, *input));
            assert_eq!(&got, want, "{input:?}");
        }
    }

    type Check = fn(&DebError) -> bool;

    #[test]
    fn hostile_entries_are_refused() {
        let cases: Vec<(&str, Vec<Item>, Check)> = vec![
            ("dotdot", vec![Item::file("../escape", b"x")], |e| {
                matches!(e, DebError::Escapes { .. })
            }),
            ("absolute", vec![Item::file("/abs/path", b"x")], |e| {
                matches!(e, DebError::AbsolutePath { .. })
            }),
            ("absolute etc", vec![Item::file("/etc/passwd", b"x")], |e| {
                matches!(e, DebError::AbsolutePath { .. })
            }),
            ("usr dotdot", vec![Item::file("./usr/../../x", b"x")], |e| {
                matches!(e, DebError::Escapes { .. })
            }),
            (
                "beneath symlink",
                vec![
                    Item::symlink("./usr/evil", "/etc"),
                    Item::file("./usr/evil/passwd", b"x"),
                ],
                |e| {
                    matches!(
                        e,
                        DebError::Tree {
                            error: TreeError::BeneathSymlink { .. },
                            ..
                        }
                    )
                },
            ),
            (
                "hardlink escapes",
                vec![Item::hardlink("./usr/x", "../../etc/shadow")],
                |e| matches!(e, DebError::BadHardlink { .. }),
            ),
            (
                "hardlink absolute",
                vec![Item::hardlink("./usr/x", "/etc/shadow")],
                |e| matches!(e, DebError::BadHardlink { .. }),
            ),
            (
                "hardlink outside usr",
                vec![Item::hardlink("./usr/x", "./opt/y")],
                |e| matches!(e, DebError::BadHardlink { .. }),
            ),
            (
                "hardlink to the root",
                vec![Item::hardlink("./usr/x", "./")],
                |e| matches!(e, DebError::BadHardlink { .. }),
            ),
            (
                "hardlink to missing file",
                vec![Item::hardlink("./usr/x", "./usr/missing")],
                |e| {
                    matches!(
                        e,
                        DebError::Tree {
                            error: TreeError::BadHardlink { .. },
                            ..
                        }
                    )
                },
            ),
            (
                "hardlink to dir",
                vec![Item::dir("./usr/d/"), Item::hardlink("./usr/x", "./usr/d")],
                |e| {
                    matches!(
                        e,
                        DebError::Tree {
                            error: TreeError::BadHardlink { .. },
                            ..
                        }
                    )
                },
            ),
            (
                "char device",
                vec![Item::char_dev("./usr/null")],
                |e| matches!(e, DebError::UnsupportedType { kind, .. } if kind == "character device"),
            ),
            ("fifo", vec![Item::fifo("./usr/fifo")], |e| {
                matches!(e, DebError::UnsupportedType { .. })
            }),
            ("opt", vec![Item::file("./opt/x", b"x")], |e| {
                matches!(e, DebError::OutsideUsr { .. })
            }),
            ("srv", vec![Item::file("./srv/x", b"x")], |e| {
                matches!(e, DebError::OutsideUsr { .. })
            }),
            ("home", vec![Item::file("./home/u/x", b"x")], |e| {
                matches!(e, DebError::OutsideUsr { .. })
            }),
            ("unknown top", vec![Item::dir("./weird/")], |e| {
                matches!(e, DebError::OutsideUsr { .. })
            }),
            ("top-level file", vec![Item::file("./x", b"x")], |e| {
                matches!(e, DebError::TopLevelNotDir { .. })
            }),
            (
                "bin symlink",
                vec![Item::symlink("./bin", "usr/bin")],
                |e| matches!(e, DebError::TopLevelNotDir { .. }),
            ),
            ("empty symlink", vec![Item::symlink("./usr/l", "")], |e| {
                matches!(e, DebError::BadSymlink { .. })
            }),
            ("non-utf8", vec![Item::file(b"./usr/\xff", b"x")], |e| {
                matches!(e, DebError::NonUtf8Path { .. })
            }),
            (
                "file over dir",
                vec![Item::dir("./usr/d/"), Item::file("./usr/d", b"x")],
                |e| {
                    matches!(
                        e,
                        DebError::Tree {
                            error: TreeError::ReplacesDir { .. },
                            ..
                        }
                    )
                },
            ),
        ];
        for (name, items, check) in cases {
            let deb = build_deb(CONTROL, &items, Compress::Xz);
            let err = count(&deb).unwrap_err();
            assert!(check(&err), "{name}: unexpected error {err:?}");
            let msg = err.to_string();
            assert!(
                msg.starts_with("hello: "),
                "{name}: message does not name the package: {msg}"
            );
        }
    }

    #[test]
    fn error_messages_name_the_entry() {
        let deb = build_deb(
            CONTROL,
            &[
                Item::symlink("./usr/evil", "/etc"),
                Item::file("./usr/evil/passwd", b""),
            ],
            Compress::Xz,
        );
        let msg = count(&deb).unwrap_err().to_string();
        assert!(
            msg.contains("./usr/evil/passwd") && msg.contains("beneath symlink"),
            "{msg}"
        );
        let deb = build_deb(CONTROL, &[Item::char_dev("./usr/null")], Compress::Xz);
        let msg = count(&deb).unwrap_err().to_string();
        assert_eq!(
            msg,
            "hello: entry \"./usr/null\" is a character device, which an image may not contain"
        );
    }

    #[test]
    fn bad_uid_is_refused() {
        let deb = build_deb(
            CONTROL,
            &[Item::file("./usr/x", b"").owner(1 << 33, 0)],
            Compress::None,
        );
        let err = count(&deb).unwrap_err();
        assert!(
            matches!(err, DebError::BadHeader { field: "uid", .. }),
            "{err:?}"
        );
    }

    /// The final byte of an odd-sized last member is the ar padding, which may be absent.
    fn only_padding_missing(deb: &[u8], cut: usize) -> bool {
        cut == deb.len() - 1 && deb[cut] == b'\n'
    }

    #[test]
    fn every_truncation_is_an_error() {
        for c in Compress::ALL {
            let deb = build_deb(CONTROL, &normal_items(), c);
            for cut in 0..deb.len() {
                if only_padding_missing(&deb, cut) {
                    continue;
                }
                let part = &deb[..cut];
                assert!(
                    extract_new(part).is_err(),
                    "{c:?}: extract of {cut}/{} bytes succeeded",
                    deb.len()
                );
                let data_start = deb.len() - 200; // well inside data.tar: control is complete
                if cut < data_start {
                    assert!(
                        read_control(part).is_err(),
                        "{c:?}: read_control of {cut} bytes succeeded"
                    );
                }
            }
        }
    }

    #[test]
    fn truncation_is_reported_as_such() {
        let deb = build_deb(CONTROL, &normal_items(), Compress::Xz);
        for cut in [0, 7, 30, 68, 100, deb.len() / 2, deb.len() - 2] {
            let err = count(&deb[..cut]).unwrap_err();
            assert!(
                err.to_string().contains("truncated or corrupt .deb"),
                "cut {cut}: {err}"
            );
        }
    }

    /// A deb whose ar framing is intact but whose data member holds `data` verbatim.
    fn deb_with_data(name: &str, data: &[u8]) -> Vec<u8> {
        ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.xz", &control_tar(CONTROL, Compress::Xz)),
            (name, data),
        ])
    }

    fn big_items() -> Vec<Item> {
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        vec![
            Item::dir("./usr/"),
            Item::file("./usr/big", &text),
            Item::file("./usr/small", b"s"),
        ]
    }

    #[test]
    fn truncated_compressed_streams_are_errors() {
        let tar = tar(&big_items());
        for c in [Compress::Gz, Compress::Xz, Compress::Zst] {
            let z = c.apply(&tar);
            let name = format!("data.tar{}", c.suffix());
            for cut in [
                1,
                z.len() / 3,
                z.len() / 2,
                z.len() - 20,
                z.len() - 4,
                z.len() - 1,
            ] {
                let err = count(&deb_with_data(&name, &z[..cut])).unwrap_err();
                assert!(
                    matches!(err, DebError::Archive { .. }),
                    "{c:?} cut {cut}: {err:?}"
                );
            }
        }
    }

    #[test]
    fn truncated_plain_tar_is_an_error() {
        let tar = tar(&big_items());
        for cut in [100, 512, 1024, tar.len() / 2, 512 + 512 + 1000] {
            let err = count(&deb_with_data("data.tar", &tar[..cut])).unwrap_err();
            assert!(
                matches!(err, DebError::Archive { .. }),
                "cut {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn corrupt_streams_are_errors() {
        // zstd frames written without a checksum cannot reveal every flipped byte, and
        // neither can a plain tar, so only the checksummed formats are flipped here.
        let tar = tar(&big_items());
        for c in [Compress::Gz, Compress::Xz] {
            let z = c.apply(&tar);
            let name = format!("data.tar{}", c.suffix());
            for at in [
                0,
                z.len() / 3,
                z.len() / 2,
                z.len() - 10,
                z.len() - 6,
                z.len() - 1,
            ] {
                let mut bad = z.clone();
                bad[at] ^= 0x55;
                let result = count(&deb_with_data(&name, &bad));
                assert!(
                    matches!(result, Err(DebError::Archive { .. })),
                    "{c:?} flip at {at}: {result:?}"
                );
            }
        }
        let err = count(&deb_with_data("data.tar.xz", b"not xz at all")).unwrap_err();
        assert!(matches!(err, DebError::Archive { .. }), "{err:?}");
    }

    #[test]
    fn ar_level_errors() {
        let control = control_tar(CONTROL, Compress::Xz);
        let data = Compress::Xz.apply(&tar(&[Item::file("./usr/x", b"x")]));
        let cases: Vec<(&str, Vec<u8>, Check)> = vec![
            ("not ar", b"hello world".to_vec(), |e| {
                matches!(e, DebError::Corrupt { .. })
            }),
            ("empty", Vec::new(), |e| {
                matches!(e, DebError::Corrupt { .. })
            }),
            ("empty ar", b"!<arch>\n".to_vec(), |e| {
                matches!(
                    e,
                    DebError::MissingMember {
                        member: "debian-binary",
                        ..
                    }
                )
            }),
            (
                "missing data.tar",
                ar(&[("debian-binary", b"2.0\n"), ("control.tar.xz", &control)]),
                |e| {
                    matches!(
                        e,
                        DebError::MissingMember {
                            member: "data.tar",
                            ..
                        }
                    )
                },
            ),
            (
                "missing control.tar",
                ar(&[("debian-binary", b"2.0\n")]),
                |e| {
                    matches!(
                        e,
                        DebError::MissingMember {
                            member: "control.tar",
                            ..
                        }
                    )
                },
            ),
            (
                "bz2",
                ar(&[
                    ("debian-binary", b"2.0\n"),
                    ("control.tar.xz", &control),
                    ("data.tar.bz2", &data),
                ]),
                |e| matches!(e, DebError::UnsupportedCompression { member, .. } if member == "data.tar.bz2"),
            ),
            (
                "format 3",
                ar(&[
                    ("debian-binary", b"3.0\n"),
                    ("control.tar.xz", &control),
                    ("data.tar.xz", &data),
                ]),
                |e| matches!(e, DebError::FormatVersion { .. }),
            ),
            (
                "wrong first member",
                ar(&[("control.tar.xz", &control), ("data.tar.xz", &data)]),
                |e| matches!(e, DebError::UnexpectedMember { .. }),
            ),
            (
                "data before control",
                ar(&[
                    ("debian-binary", b"2.0\n"),
                    ("data.tar.xz", &data),
                    ("control.tar.xz", &control),
                ]),
                |e| matches!(e, DebError::UnexpectedMember { .. }),
            ),
        ];
        for (name, deb, check) in cases {
            let err = count(&deb).unwrap_err();
            assert!(check(&err), "{name}: extract: {err:?}");
            assert!(err.to_string().starts_with("hello: "), "{name}: {err}");
            let err = read_control(&deb).unwrap_err();
            assert!(check(&err), "{name}: read_control: {err:?}");
        }
    }

    #[test]
    fn bad_ar_headers() {
        let good = build_deb(CONTROL, &[Item::dir("./usr/")], Compress::Xz);
        let mut bad_magic = good.clone();
        bad_magic[8 + 58] = b'x';
        let mut bad_size = good.clone();
        bad_size[8 + 48] = b'z';
        let control = control_tar(CONTROL, Compress::Xz);
        let data = Compress::Xz.apply(&tar(&[]));
        let mut bad_pad = ar(&[
            ("debian-binary", b"2.0\n"),
            ("_odd", b"x"),
            ("control.tar.xz", &control),
            ("data.tar.xz", &data),
        ]);
        assert_eq!(bad_pad[8 + 60 + 4 + 60 + 1], b'\n');
        bad_pad[8 + 60 + 4 + 60 + 1] = b'x';
        for (name, deb) in [
            ("magic", bad_magic),
            ("size", bad_size),
            ("padding", bad_pad),
        ] {
            let err = count(&deb).unwrap_err();
            assert!(matches!(err, DebError::Corrupt { .. }), "{name}: {err:?}");
        }
    }

    #[test]
    fn long_gnu_names() {
        let long = format!("./lib/modules/6.1/kernel/{}driver.ko", "sub/".repeat(40));
        let mut builder = tar::Builder::new(Vec::new());
        let new_header = || {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header
        };
        let mut header = new_header();
        header.set_size(2);
        builder.append_data(&mut header, &long, &b"ko"[..]).unwrap();
        let mut header = new_header();
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        builder.append_link(&mut header, "./usr/ko", &long).unwrap();
        let data = Compress::Xz.apply(&builder.into_inner().unwrap());
        let (tree, n) = extract_new(&deb_with_data("data.tar.xz", &data)).unwrap();
        let mapped = format!("usr/{}", &long[2..]);
        assert_eq!(n, 2);
        assert_eq!(tree.get(&mapped).unwrap().kind, file(b"ko"));
        assert_eq!(tree.get("usr/ko").unwrap().kind, Kind::Hardlink(mapped));
    }

    #[test]
    fn underscore_members_are_skipped() {
        let control = control_tar(CONTROL, Compress::Gz);
        let data = Compress::Gz.apply(&tar(&[Item::file("./usr/x", b"x")]));
        let deb = ar(&[
            ("debian-binary", b"2.0\n"),
            ("_gpgorigin", b"sig"),
            ("control.tar.gz", &control),
            ("_extra", b""),
            ("data.tar.gz", &data),
        ]);
        assert_eq!(extract_new(&deb).unwrap().1, 1);
        assert_eq!(read_control(&deb).unwrap().package, "hello");
    }

    #[test]
    fn control_in_every_compression() {
        for c in Compress::ALL {
            let deb = build_deb(CONTROL, &[], c);
            let control = read_control(&deb).unwrap_or_else(|e| panic!("{c:?}: {e}"));
            assert_eq!(control.package, "hello");
            assert_eq!(control.version, "1:2.10-3+b1");
            assert_eq!(control.architecture, "amd64");
            assert_eq!(control.fields["Depends"], "libc6 (>= 2.34)");
            assert_eq!(
                control.fields["Description"],
                "example package\n a longer\n .\n description"
            );
            assert_eq!(control.fields.len(), 5);
        }
    }

    #[test]
    fn control_errors() {
        let cases: &[(&str, &str, Check)] = &[
            ("no version", "Package: a\nArchitecture: all\n", |e| {
                matches!(
                    e,
                    DebError::MissingField {
                        field: "Version",
                        ..
                    }
                )
            }),
            (
                "empty package",
                "Package:\nVersion: 1\nArchitecture: all\n",
                |e| {
                    matches!(
                        e,
                        DebError::MissingField {
                            field: "Package",
                            ..
                        }
                    )
                },
            ),
            (
                "bad version",
                "Package: a\nVersion: x y\nArchitecture: all\n",
                |e| matches!(e, DebError::BadControl { .. }),
            ),
            (
                "duplicate",
                "Package: a\npackage: b\nVersion: 1\nArchitecture: all\n",
                |e| matches!(e, DebError::BadControl { reason, .. } if reason.contains("duplicate")),
            ),
            (
                "leading continuation",
                " x\nPackage: a\nVersion: 1\nArchitecture: all\n",
                |e| matches!(e, DebError::BadControl { .. }),
            ),
            (
                "not a field",
                "Package: a\nVersion 1\nArchitecture: all\n",
                |e| matches!(e, DebError::BadControl { .. }),
            ),
            (
                "two paragraphs",
                "Package: a\nVersion: 1\nArchitecture: all\n\nPackage: b\n",
                |e| matches!(e, DebError::BadControl { .. }),
            ),
        ];
        for (name, text, check) in cases {
            let deb = build_deb(text, &[], Compress::Xz);
            let err = read_control(&deb).unwrap_err();
            assert!(check(&err), "{name}: {err:?}");
        }
        let ok = "\nPackage: a\nVersion: 1\nArchitecture: all\n\n\n";
        assert_eq!(
            read_control(&build_deb(ok, &[], Compress::Xz))
                .unwrap()
                .package,
            "a"
        );
    }

    #[test]
    fn control_tar_without_control() {
        let control = Compress::Xz.apply(&tar(&[Item::file("./md5sums", b"")]));
        let data = Compress::Xz.apply(&tar(&[]));
        let deb = ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.xz", &control),
            ("data.tar.xz", &data),
        ]);
        assert!(matches!(
            read_control(&deb),
            Err(DebError::MissingControl { .. })
        ));
    }

    proptest! {
        #[test]
        fn mutated_debs_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(), c in 0..4usize) {
            let mut deb = build_deb(CONTROL, &normal_items(), Compress::ALL[c]);
            let i = at.index(deb.len());
            deb[i] = byte;
            let _ = extract_new(&deb);
            let _ = read_control(&deb);
        }

        #[test]
        fn random_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..600)) {
            let mut deb = b"!<arch>\ndebian-binary   ".to_vec();
            deb.extend(tail);
            let _ = extract_new(&deb);
            let _ = read_control(&deb);
        }
    }
}
