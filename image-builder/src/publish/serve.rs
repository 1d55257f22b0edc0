//! `image-builder serve`: a small static HTTP server for a channel repository, for local use
//! and tests (production repositories go behind nginx, S3 or a CDN: they are plain files).
//!
//! GET and HEAD, single byte ranges (`Range: bytes=A-B`, `A-`, `-N`) so interrupted payload
//! downloads resume, and no path outside the repository (`..` and absolute paths are refused).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A requested byte range, resolved against a file size: `start..end` (end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// What a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No header, or one we serve whole (multiple ranges, other units).
    Whole,
    Part(ByteRange),
    /// 416: the range starts beyond the end.
    Unsatisfiable,
}

/// Parse a `Range` header value against a file size (RFC 9110 §14.1.2). Pure.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeRequest::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(start), None) if b.is_empty() => (start, size),
        (Some(start), Some(last)) if last >= start => (start, (last + 1).min(size)),
        (None, Some(n)) if a.is_empty() => (size.saturating_sub(n), size),
        _ => return RangeRequest::Whole,
    };
    if range.0 >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part(ByteRange {
        start: range.0,
        end: range.1,
    })
}

/// The file a URL path names inside `root`, or `None` when it would leave it. Pure.
pub fn resolve(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let mut out = root.to_path_buf();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => return None,
            c if c.contains('\\') || c.contains('\0') => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => "application/json",
        Some("sig") => "application/json",
        _ => "application/octet-stream",
    }
}

/// Serve `root` on `listen` until the process ends. Prints the URL.
pub fn serve(root: &Path, listen: &str) -> Result<()> {
    let server = tiny_http::Server::http(listen)
        .map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
    let root = root
        .canonicalize()
        .with_context(|| format!("repository {}", root.display()))?;
    eprintln!(
        "serving {} on http://{}",
        root.display(),
        server.server_addr()
    );
    for req in server.incoming_requests() {
        let _ = respond(&root, req);
    }
    Ok(())
}

fn header<'a>(req: &'a tiny_http::Request, name: &'static str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

fn respond(root: &Path, req: tiny_http::Request) -> std::io::Result<()> {
    use tiny_http::{Header, Method, Response, StatusCode};
    let text = |code: u16, msg: &str| Response::from_string(msg).with_status_code(StatusCode(code));
    if !matches!(req.method(), Method::Get | Method::Head) {
        return req.respond(text(405, "method not allowed\n"));
    }
    let Some(path) = resolve(root, req.url()).filter(|p| p.is_file()) else {
        return req.respond(text(404, "not found\n"));
    };
    let mut file = File::open(&path)?;
    let size = file.metadata()?.len();
    let ctype = Header::from_bytes("Content-Type", content_type(&path)).expect("static header");
    let ranges = Header::from_bytes("Accept-Ranges", "bytes").expect("static header");
    let (status, start, len, extra) = match parse_range(header(&req, "Range"), size) {
        RangeRequest::Whole => (200, 0, size, None),
        RangeRequest::Part(r) => {
            let cr = format!("bytes {}-{}/{size}", r.start, r.end - 1);
            (
                206,
                r.start,
                r.end - r.start,
                Some(Header::from_bytes("Content-Range", cr).expect("ascii")),
            )
        }
        RangeRequest::Unsatisfiable => {
            let cr = Header::from_bytes("Content-Range", format!("bytes */{size}")).expect("ascii");
            return req.respond(text(416, "range not satisfiable\n").with_header(cr));
        }
    };
    file.seek(SeekFrom::Start(start))?;
    let body: Box<dyn Read + Send> = if *req.method() == Method::Head {
        Box::new(std::io::empty())
    } else {
        Box::new(file.take(len))
    };
    // The length is known: never chunked (tiny_http chunks bodies over 32 KiB to HTTP/1.1
    // clients by default, and the iPXE of QEMU's e1000e ROM boots nothing it got chunked).
    let mut resp = Response::new(
        StatusCode(status),
        vec![ctype, ranges],
        body,
        Some(len as usize),
        None,
    )
    .with_chunked_threshold(usize::MAX);
    if let Some(h) = extra {
        resp.add_header(h);
    }
    req.respond(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let cases = [
            (None, RangeRequest::Whole),
            (
                Some("bytes=0-9"),
                RangeRequest::Part(ByteRange { start: 0, end: 10 }),
            ),
            (
                Some("bytes=90-"),
                RangeRequest::Part(ByteRange {
                    start: 90,
                    end: 100,
                }),
            ),
            (
                Some("bytes=-10"),
                RangeRequest::Part(ByteRange {
                    start: 90,
                    end: 100,
                }),
            ),
            (
                Some("bytes=50-500"),
                RangeRequest::Part(ByteRange {
                    start: 50,
                    end: 100,
                }),
            ),
            (Some("bytes=100-"), RangeRequest::Unsatisfiable),
            (Some("bytes=9-1"), RangeRequest::Whole),
            (Some("bytes=0-1,5-6"), RangeRequest::Whole),
            (Some("items=0-1"), RangeRequest::Whole),
        ];
        for (h, want) in cases {
            assert_eq!(parse_range(h, 100), want, "{h:?}");
        }
    }

    #[test]
    fn paths_stay_inside() {
        let root = Path::new("/srv/repo");
        assert_eq!(
            resolve(root, "/channels/alpha/manifest.json?x=1"),
            Some(root.join("channels/alpha/manifest.json"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/a/%2e%2e/b"), Some(root.join("a/%2e%2e/b")));
        assert_eq!(
            resolve(root, "//payloads//x"),
            Some(root.join("payloads/x"))
        );
    }

    #[test]
    fn serves_files_and_ranges_over_loopback() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("payloads")).unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("payloads/blob"), &data).unwrap();
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let addr = server.server_addr().to_ip().unwrap();
        let root = dir.path().to_path_buf();
        std::thread::spawn(move || {
            for req in server.incoming_requests().take(4) {
                respond(&root, req).unwrap();
            }
        });
        let get = |path: &str, range: Option<&str>| {
            use std::io::Write;
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let extra = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
            write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n{extra}\r\n").unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).unwrap();
            let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            (
                String::from_utf8_lossy(&out[..split]).into_owned(),
                out[split + 4..].to_vec(),
            )
        };
        let (head, body) = get("/payloads/blob", None);
        assert!(head.starts_with("HTTP/1.0 200"), "{head}");
        assert_eq!(body, data);
        let (head, body) = get("/payloads/blob", Some("bytes=9000-"));
        assert!(head.starts_with("HTTP/1.0 206"), "{head}");
        assert!(
            head.contains("Content-Range: bytes 9000-9999/10000"),
            "{head}"
        );
        assert_eq!(body, &data[9000..]);
        let (head, _) = get("/../../etc/passwd", None);
        assert!(head.starts_with("HTTP/1.0 404"), "{head}");
        let (head, _) = get("/payloads/blob", Some("bytes=20000-"));
        assert!(head.starts_with("HTTP/1.0 416"), "{head}");
    }
}
