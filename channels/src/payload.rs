//! Streaming payload verification: count and hash bytes as they arrive, refuse the first byte
//! past the declared size, and check size and sha256 at the end.
//!
//! [`PayloadVerifier`] is the push form (feed it chunks; also usable to re-hash a prefix already
//! written before a resumed download); [`VerifyingReader`] is the pull form for
//! `io::copy(&mut VerifyingReader::new(body, &payload), &mut slot)`. The reader never hands out
//! more than `size` bytes, and reports failures as `io::ErrorKind::InvalidData` errors wrapping a
//! [`PayloadError`] (see [`PayloadError::from_io`]). DESIGN.md "Update channel repository".

use crate::documents::PayloadRef;
use sha2::{Digest, Sha256};
use std::io::{self, Read};

/// A payload whose bytes do not match its [`PayloadRef`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// More bytes arrived than declared.
    #[error("payload {sha256}: more than the declared {expected} bytes")]
    TooLong {
        /// Declared sha256.
        sha256: String,
        /// Declared size.
        expected: u64,
    },
    /// The stream ended early.
    #[error("payload {sha256}: ended after {got} of {expected} bytes")]
    TooShort {
        /// Declared sha256.
        sha256: String,
        /// Declared size.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// Right size, wrong content.
    #[error("payload: sha256 mismatch: expected {expected}, got {actual}")]
    HashMismatch {
        /// Declared sha256.
        expected: String,
        /// sha256 of the bytes received.
        actual: String,
    },
}

impl PayloadError {
    /// The payload error inside an `io::Error` returned by [`VerifyingReader`], if any.
    pub fn from_io(err: &io::Error) -> Option<&PayloadError> {
        err.get_ref().and_then(|e| e.downcast_ref::<PayloadError>())
    }
}

impl From<PayloadError> for io::Error {
    fn from(e: PayloadError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Counts and hashes payload bytes pushed into it.
#[derive(Debug, Clone)]
pub struct PayloadVerifier {
    expected: PayloadRef,
    hasher: Sha256,
    received: u64,
}

impl PayloadVerifier {
    /// A verifier for `expected`, having received nothing.
    pub fn new(expected: &PayloadRef) -> PayloadVerifier {
        PayloadVerifier {
            expected: expected.clone(),
            hasher: Sha256::new(),
            received: 0,
        }
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Bytes still expected.
    pub fn remaining(&self) -> u64 {
        self.expected.size - self.received
    }

    /// Feeds `chunk`; refuses it whole (feeding nothing) if it would pass the declared size.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), PayloadError> {
        if chunk.len() as u64 > self.remaining() {
            return Err(PayloadError::TooLong {
                sha256: self.expected.sha256.clone(),
                expected: self.expected.size,
            });
        }
        self.hasher.update(chunk);
        self.received += chunk.len() as u64;
        Ok(())
    }

    /// Checks the total size and the sha256.
    pub fn finish(self) -> Result<(), PayloadError> {
        if self.received != self.expected.size {
            return Err(PayloadError::TooShort {
                sha256: self.expected.sha256,
                expected: self.expected.size,
                got: self.received,
            });
        }
        let actual = hex::encode(self.hasher.finalize());
        if actual != self.expected.sha256 {
            return Err(PayloadError::HashMismatch {
                expected: self.expected.sha256,
                actual,
            });
        }
        Ok(())
    }
}

impl PayloadRef {
    /// Checks whole in-memory bytes against this reference.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), PayloadError> {
        let mut verifier = PayloadVerifier::new(self);
        verifier.update(bytes)?;
        verifier.finish()
    }
}

/// A reader that passes through at most `size` bytes of `inner`, and at the end of `inner`
/// fails unless exactly `size` bytes with the right sha256 came through. Once it has returned
/// `Ok(0)` the payload is verified.
#[derive(Debug)]
pub struct VerifyingReader<R> {
    inner: R,
    verifier: Option<PayloadVerifier>,
}

impl<R: Read> VerifyingReader<R> {
    /// Verifies the whole payload read from `inner`.
    pub fn new(inner: R, expected: &PayloadRef) -> VerifyingReader<R> {
        VerifyingReader::with_verifier(inner, PayloadVerifier::new(expected))
    }

    /// Continues a verification: `verifier` has already been fed the first bytes (e.g. re-read
    /// from the slot before resuming a download), `inner` yields the rest.
    pub fn with_verifier(inner: R, verifier: PayloadVerifier) -> VerifyingReader<R> {
        VerifyingReader {
            inner,
            verifier: Some(verifier),
        }
    }

    /// Whether the payload has been read to the end and verified.
    pub fn is_verified(&self) -> bool {
        self.verifier.is_none()
    }

    /// The inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(verifier) = self.verifier.as_mut() else {
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        let remaining = verifier.remaining();
        if remaining == 0 {
            // Everything declared has arrived: probe one byte to tell the end from a surplus.
            let mut probe = [0u8; 1];
            if read_retrying(&mut self.inner, &mut probe)? != 0 {
                return Err(verifier.update(&probe).unwrap_err().into());
            }
            self.verifier.take().expect("present").finish()?;
            return Ok(0);
        }
        let cap = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = read_retrying(&mut self.inner, &mut buf[..cap])?;
        if n == 0 {
            let verifier = self.verifier.take().expect("present");
            return Err(verifier.finish().expect_err("bytes are missing").into());
        }
        verifier.update(&buf[..n])?;
        Ok(n)
    }
}

fn read_retrying(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    fn payload_ref(bytes: &[u8]) -> PayloadRef {
        PayloadRef {
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
        }
    }

    fn copy(input: &[u8], expected: &PayloadRef) -> (Vec<u8>, Result<u64, PayloadError>) {
        let mut reader = VerifyingReader::new(Cursor::new(input), expected);
        let mut out = Vec::new();
        let result = io::copy(&mut reader, &mut out)
            .map_err(|e| PayloadError::from_io(&e).expect("payload error").clone());
        if result.is_ok() {
            assert!(reader.is_verified());
        }
        (out, result)
    }

    #[test]
    fn exact() {
        let data = b"hello payload";
        let (out, result) = copy(data, &payload_ref(data));
        assert_eq!(result, Ok(data.len() as u64));
        assert_eq!(out, data);
        assert_eq!(payload_ref(data).verify(data), Ok(()));
        let empty = payload_ref(b"");
        assert_eq!(copy(b"", &empty).1, Ok(0));
    }

    #[test]
    fn short() {
        let data = b"hello payload";
        let (_, result) = copy(&data[..5], &payload_ref(data));
        assert!(
            matches!(
                result,
                Err(PayloadError::TooShort {
                    expected: 13,
                    got: 5,
                    ..
                })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn long_never_passes_extra_bytes() {
        let data = b"hello payload";
        let mut longer = data.to_vec();
        longer.extend_from_slice(b"and more");
        let (out, result) = copy(&longer, &payload_ref(data));
        assert!(
            matches!(result, Err(PayloadError::TooLong { expected: 13, .. })),
            "{result:?}"
        );
        assert_eq!(out, data, "only the declared bytes are handed out");
        assert!(matches!(
            payload_ref(data).verify(&longer),
            Err(PayloadError::TooLong { .. })
        ));
    }

    #[test]
    fn wrong_hash() {
        let data = b"hello payload";
        let (_, result) = copy(b"hello paylobd", &payload_ref(data));
        assert!(
            matches!(result, Err(PayloadError::HashMismatch { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn resumed_verification() {
        let data = b"0123456789abcdef";
        let mut verifier = PayloadVerifier::new(&payload_ref(data));
        verifier.update(&data[..6]).unwrap();
        let mut reader = VerifyingReader::with_verifier(Cursor::new(&data[6..]), verifier);
        let mut out = Vec::new();
        io::copy(&mut reader, &mut out).unwrap();
        assert_eq!(out, &data[6..]);
        assert!(reader.is_verified());
    }

    /// Hands out at most `chunk` bytes per read, to exercise many small reads.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    proptest! {
        #[test]
        fn sizes(data in prop::collection::vec(any::<u8>(), 0..3000), declared_delta in -3i64..=3, chunk in 1usize..700) {
            let declared = (data.len() as i64 + declared_delta).max(0) as usize;
            let expected = payload_ref(&data[..declared.min(data.len())]);
            let expected = PayloadRef { size: declared as u64, ..expected };
            let mut reader = VerifyingReader::new(Trickle(&data, chunk), &expected);
            let mut out = Vec::new();
            let result = io::copy(&mut reader, &mut out);
            prop_assert!(out.len() <= declared);
            let err = result.as_ref().err().map(|e| PayloadError::from_io(e).unwrap().clone());
            match declared.cmp(&data.len()) {
                std::cmp::Ordering::Equal => prop_assert_eq!(err, None),
                std::cmp::Ordering::Less => prop_assert!(matches!(err, Some(PayloadError::TooLong { .. })), "{:?}", err),
                std::cmp::Ordering::Greater => prop_assert!(matches!(err, Some(PayloadError::TooShort { .. })), "{:?}", err),
            }
        }
    }
}
