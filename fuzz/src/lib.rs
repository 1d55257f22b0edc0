//! What the fuzz targets (`fuzz_targets/*.rs`) share: cutting one input into several.
//!
//! Each target feeds one parser (or a parser and its renderer) and asserts what must hold for
//! every input: no panic, and where the format has a writer, that writing what was read and
//! reading it again gives the same value. See `fuzz/README.md`.

/// `data` cut at its first `n - 1` NUL bytes into `n` parts; missing parts are empty. Text
/// targets take several strings this way (a file name and its text, a document and its
/// signature), so every seed is a readable file.
pub fn split_nul(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts = Vec::with_capacity(n);
    let mut rest = data;
    while parts.len() + 1 < n {
        match rest.iter().position(|&b| b == 0) {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + 1..];
            }
            None => {
                parts.push(rest);
                rest = &[];
            }
        }
    }
    parts.push(rest);
    parts
}

/// [`split_nul`], each part as UTF-8 (invalid sequences replaced).
pub fn split_text(data: &[u8], n: usize) -> Vec<String> {
    split_nul(data, n)
        .into_iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        assert_eq!(split_nul(b"a\0b\0c", 2), [&b"a"[..], b"b\0c"]);
        assert_eq!(split_nul(b"a", 3), [&b"a"[..], b"", b""]);
        assert_eq!(split_nul(b"", 1), [&b""[..]]);
    }
}
