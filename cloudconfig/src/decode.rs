//! `write_files[].encoding`: decoding a file's `content` as upstream's `config.DecodeContent`
//! (config/decode.go) does, plus the base64 flavour of Go's `encoding/base64.StdEncoding`, which
//! `!!binary` scalars use as well.
//!
//! One deliberate difference: upstream only notices a bad gzip *header* (it ignores read errors of
//! the body, so a truncated stream silently yields partial content); here a corrupt or truncated
//! gzip body is an error too. Decompressed content is capped at [`MAX_CONTENT_BYTES`].

use std::io::Read;

use flate2::read::MultiGzDecoder;

/// Largest decoded `content` accepted (a guard against gzip bombs in user-data).
pub const MAX_CONTENT_BYTES: u64 = 64 << 20; // 64 MiB

/// Why `content` could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The encoding is not one upstream knows.
    Unsupported,
    Base64,
    Gzip,
    /// Decompressed content exceeds [`MAX_CONTENT_BYTES`].
    TooLarge,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecodeError::Unsupported => "unsupported encoding",
            DecodeError::Base64 => "invalid base64",
            DecodeError::Gzip => "invalid gzip data",
            DecodeError::TooLarge => "decompressed content exceeds 64 MiB",
        })
    }
}

impl std::error::Error for DecodeError {}

/// Decodes `content` written with `encoding` (`""` means as-is).
pub fn decode_content(content: &[u8], encoding: &str) -> Result<Vec<u8>, DecodeError> {
    match encoding {
        "" => Ok(content.to_vec()),
        "b64" | "base64" => go_base64(content).ok_or(DecodeError::Base64),
        "gz" | "gzip" => gunzip(content),
        "gz+base64" | "gzip+base64" | "gz+b64" | "gzip+b64" => {
            gunzip(&go_base64(content).ok_or(DecodeError::Base64)?)
        }
        _ => Err(DecodeError::Unsupported),
    }
}

/// Go's `base64.StdEncoding.DecodeString`: `\r` and `\n` anywhere are skipped, padding is
/// required, nothing may follow it; unused trailing bits need not be zero.
pub fn go_base64(data: &[u8]) -> Option<Vec<u8>> {
    let chars: Vec<u8> = data
        .iter()
        .copied()
        .filter(|c| !matches!(c, b'\r' | b'\n'))
        .collect();
    if !chars.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(chars.len() / 4 * 3);
    let quads = chars.chunks(4);
    let last = quads.len().saturating_sub(1);
    for (n, quad) in quads.enumerate() {
        let pad = quad.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && n != last) {
            return None;
        }
        let mut acc: u32 = 0;
        for &c in &quad[..4 - pad] {
            acc = (acc << 6) | u32::from(sextet(c)?);
        }
        acc <<= 6 * pad as u32;
        let [_, a, b, c] = acc.to_be_bytes();
        out.extend_from_slice(&[a, b, c][..3 - pad]);
    }
    Some(out)
}

fn sextet(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    })
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    // An empty input is not a gzip stream (Go: EOF reading the header).
    if data.len() < 2 || data[..2] != [0x1f, 0x8b] {
        return Err(DecodeError::Gzip);
    }
    let mut out = Vec::new();
    MultiGzDecoder::new(data)
        .take(MAX_CONTENT_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|_| DecodeError::Gzip)?;
    if out.len() as u64 > MAX_CONTENT_BYTES {
        return Err(DecodeError::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // "bar" gzipped, as in upstream's config_test.go TestNewCloudConfigDecode.
    const GZ_BAR_B64: &[u8] = b"H4sIABMVh1QAA0tKLAIAqoz/dgMAAAA=";

    #[test]
    fn base64_as_go_decodes_it() {
        struct Case {
            input: &'static [u8],
            want: Option<&'static [u8]>,
        }
        let cases = [
            Case {
                input: b"YmFy",
                want: Some(b"bar"),
            },
            Case {
                input: b"YmFy\n",
                want: Some(b"bar"),
            },
            Case {
                input: b"Ym\r\nFy",
                want: Some(b"bar"),
            },
            Case {
                input: b"YQ==",
                want: Some(b"a"),
            },
            Case {
                input: b"YR==",
                want: Some(b"a"),
            },
            Case {
                input: b"YWI=",
                want: Some(b"ab"),
            },
            Case {
                input: b"",
                want: Some(b""),
            },
            Case {
                input: b"YQ",
                want: None,
            },
            Case {
                input: b"YQ=",
                want: None,
            },
            Case {
                input: b"YQ==YQ==",
                want: None,
            },
            Case {
                input: b"Y===",
                want: None,
            },
            Case {
                input: b"Ym Fy",
                want: None,
            },
            Case {
                input: b"hello\n",
                want: None,
            },
        ];
        for c in cases {
            assert_eq!(go_base64(c.input).as_deref(), c.want, "{:?}", c.input);
        }
    }

    #[test]
    fn every_upstream_encoding_name() {
        for enc in ["gz+base64", "gzip+base64", "gz+b64", "gzip+b64"] {
            assert_eq!(
                decode_content(GZ_BAR_B64, enc),
                Ok(b"bar".to_vec()),
                "{enc}"
            );
        }
        let raw = go_base64(GZ_BAR_B64).expect("base64");
        for enc in ["gz", "gzip"] {
            assert_eq!(decode_content(&raw, enc), Ok(b"bar".to_vec()), "{enc}");
        }
        for enc in ["b64", "base64"] {
            assert_eq!(decode_content(b"YmFy", enc), Ok(b"bar".to_vec()), "{enc}");
        }
        assert_eq!(decode_content(b"as is", ""), Ok(b"as is".to_vec()));
        assert_eq!(
            decode_content(b"x", "custom"),
            Err(DecodeError::Unsupported)
        );
        assert_eq!(decode_content(b"YmFy", "gzip"), Err(DecodeError::Gzip));
        assert_eq!(decode_content(b"", "gzip"), Err(DecodeError::Gzip));
        assert_eq!(
            decode_content(&raw[..raw.len() - 4], "gzip"),
            Err(DecodeError::Gzip)
        );
    }

    #[test]
    fn gzip_bombs_are_capped() {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..=(MAX_CONTENT_BYTES >> 20) {
            enc.write_all(&zeros).expect("compress");
        }
        let bomb = enc.finish().expect("compress");
        assert_eq!(decode_content(&bomb, "gzip"), Err(DecodeError::TooLarge));
    }
}
