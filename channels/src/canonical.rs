//! Canonical JSON: the one byte form of everything signed in a channel repository.
//!
//! Rules (RFC 8785 "JCS" string and whitespace rules, with integers only, as TUF and OLPC do):
//! - no insignificant whitespace: `{"a":1,"b":[true,null]}`;
//! - object keys sorted by the bytes of their UTF-8 encoding (code point order; identical to
//!   RFC 8785's UTF-16 order for every key this crate writes, which are ASCII); duplicate keys are
//!   not canonical;
//! - numbers are integers in `i64`/`u64` range written in shortest decimal form (no `+`, no
//!   leading zeros, no `-0`, no fraction or exponent); floats are refused on write and on read;
//! - strings are UTF-8 and escape only `"` → `\"`, `\` → `\\`, and control characters below
//!   U+0020: `\b \t \n \f \r` in their short form, the others as `\u00XX` (lowercase hex).
//!   Everything else, including U+007F and non-ASCII, is written as is.
//! - no trailing newline.
//!
//! Files on disk are exactly these bytes, so a verifier checks the signature over the bytes it
//! received and [`from_slice`] then refuses any document that is not its own canonical form.
//! See SPECS.md S14 (TUF essentials).

use serde::de::DeserializeOwned;
use serde::ser::{self, Serialize};
use serde_json::Value;
use std::fmt;

/// Why a value could not be written or read as canonical JSON.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    /// A float (or an integer outside `i64`/`u64`) where canonical JSON allows integers only.
    #[error("canonical JSON allows integers only, found the number {0}")]
    Float(String),
    /// The value could not be serialized (e.g. a map with non-string keys).
    #[error("cannot serialize to canonical JSON: {0}")]
    Serialize(String),
    /// The bytes are not JSON (includes truncated documents and invalid UTF-8).
    #[error("not valid JSON: {0}")]
    Syntax(String),
    /// The bytes are JSON but not in canonical form (whitespace, key order, escapes, ...).
    #[error("JSON is not in canonical form (expected {expected_len} canonical bytes, got {got_len}, first difference at byte {first_difference})")]
    NotCanonical {
        /// Length of the canonical re-encoding.
        expected_len: usize,
        /// Length of the input.
        got_len: usize,
        /// Offset of the first differing byte.
        first_difference: usize,
    },
    /// Canonical JSON that does not have the shape of the expected document.
    #[error("unexpected document shape: {0}")]
    Shape(String),
}

/// Serializes `value` to canonical JSON bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    // serde_json's value model turns NaN/inf into null; catch every float before it gets there.
    value.serialize(FloatFinder).map_err(|e| e.0)?;
    let value =
        serde_json::to_value(value).map_err(|e| CanonicalError::Serialize(e.to_string()))?;
    let mut out = Vec::new();
    write_value(&value, &mut out)?;
    Ok(out)
}

/// Parses canonical JSON bytes into `T`, refusing bytes that are not their own canonical form.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CanonicalError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| CanonicalError::Syntax(e.to_string()))?;
    let canonical = to_vec(&value)?;
    if canonical != bytes {
        let first_difference = canonical
            .iter()
            .zip(bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(canonical.len().min(bytes.len()));
        return Err(CanonicalError::NotCanonical {
            expected_len: canonical.len(),
            got_len: bytes.len(),
            first_difference,
        });
    }
    T::deserialize(value).map_err(|e| CanonicalError::Shape(e.to_string()))
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => out.extend_from_slice(u.to_string().as_bytes()),
            (None, Some(i)) => out.extend_from_slice(i.to_string().as_bytes()),
            (None, None) => return Err(CanonicalError::Float(n.to_string())),
        },
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// A serializer that discards everything and fails on the first float it meets.
struct FloatFinder;

#[derive(Debug)]
struct FindError(CanonicalError);

impl fmt::Display for FindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for FindError {}

impl ser::Error for FindError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        FindError(CanonicalError::Serialize(msg.to_string()))
    }
}

macro_rules! ok_scalars {
    ($($name:ident: $ty:ty),* $(,)?) => {
        $(fn $name(self, _v: $ty) -> Result<(), FindError> { Ok(()) })*
    };
}

impl ser::Serializer for FloatFinder {
    type Ok = ();
    type Error = FindError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    ok_scalars!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_char: char,
        serialize_str: &str, serialize_bytes: &[u8], serialize_unit_struct: &'static str,
    );

    fn serialize_f32(self, v: f32) -> Result<(), FindError> {
        Err(FindError(CanonicalError::Float(v.to_string())))
    }
    fn serialize_f64(self, v: f64) -> Result<(), FindError> {
        Err(FindError(CanonicalError::Float(v.to_string())))
    }
    fn serialize_none(self) -> Result<(), FindError> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), FindError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), FindError> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), FindError> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), FindError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        v: &T,
    ) -> Result<(), FindError> {
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, FindError> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, FindError> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, FindError> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, FindError> {
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, FindError> {
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, FindError> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, FindError> {
        Ok(self)
    }
}

macro_rules! finder_compound {
    ($($trait:ident::$method:ident),* $(,)?) => {
        $(impl ser::$trait for FloatFinder {
            type Ok = ();
            type Error = FindError;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), FindError> {
                v.serialize(FloatFinder)
            }
            fn end(self) -> Result<(), FindError> {
                Ok(())
            }
        })*
    };
}

finder_compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for FloatFinder {
    type Ok = ();
    type Error = FindError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), FindError> {
        k.serialize(FloatFinder)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), FindError> {
        v.serialize(FloatFinder)
    }
    fn end(self) -> Result<(), FindError> {
        Ok(())
    }
}

impl ser::SerializeStruct for FloatFinder {
    type Ok = ();
    type Error = FindError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        v: &T,
    ) -> Result<(), FindError> {
        v.serialize(FloatFinder)
    }
    fn end(self) -> Result<(), FindError> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for FloatFinder {
    type Ok = ();
    type Error = FindError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        v: &T,
    ) -> Result<(), FindError> {
        v.serialize(FloatFinder)
    }
    fn end(self) -> Result<(), FindError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    struct Case {
        name: &'static str,
        input: Value,
        want: &'static str,
    }

    #[test]
    fn writes_canonical_form() {
        let cases = [
            Case {
                name: "key order",
                input: json!({"b": 1, "a": 2, "A": 3, "_": 4}),
                want: r#"{"A":3,"_":4,"a":2,"b":1}"#,
            },
            Case {
                name: "nested",
                input: json!({"z": {"y": [1, {"b": null, "a": true}]}, "a": []}),
                want: r#"{"a":[],"z":{"y":[1,{"a":true,"b":null}]}}"#,
            },
            Case {
                name: "negative and big",
                input: json!([-1, 0, u64::MAX, i64::MIN]),
                want: "[-1,0,18446744073709551615,-9223372036854775808]",
            },
            Case {
                name: "quote and backslash",
                input: json!("a\"b\\c"),
                want: r#""a\"b\\c""#,
            },
            Case {
                name: "short escapes",
                input: json!("\u{8}\t\n\u{c}\r"),
                want: r#""\b\t\n\f\r""#,
            },
            Case {
                name: "other controls",
                input: json!("\u{0}\u{1f}"),
                want: r#""\u0000\u001f""#,
            },
            Case {
                name: "unicode and slash as is",
                input: json!("é/\u{7f}\u{2028}😀"),
                want: "\"é/\u{7f}\u{2028}😀\"",
            },
            Case {
                name: "non-ascii key order by bytes",
                input: json!({"é": 1, "z": 2}),
                want: r#"{"z":2,"é":1}"#,
            },
        ];
        for case in cases {
            let got = String::from_utf8(to_vec(&case.input).unwrap()).unwrap();
            assert_eq!(got, case.want, "{}", case.name);
            let back: Value = from_slice(got.as_bytes()).unwrap();
            assert_eq!(back, case.input, "{}", case.name);
        }
    }

    #[test]
    fn struct_fields_are_sorted_too() {
        #[derive(serde::Serialize)]
        struct S {
            zeta: u8,
            alpha: BTreeMap<String, i32>,
        }
        let s = S {
            zeta: 1,
            alpha: [("y".into(), -2), ("x".into(), 3)].into(),
        };
        assert_eq!(to_vec(&s).unwrap(), br#"{"alpha":{"x":3,"y":-2},"zeta":1}"#);
    }

    #[test]
    fn refuses_floats_on_write() {
        for v in [1.5f64, 1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(to_vec(&v), Err(CanonicalError::Float(_))), "{v}");
            assert!(
                matches!(to_vec(&vec![Some(v)]), Err(CanonicalError::Float(_))),
                "{v}"
            );
        }
        assert!(matches!(to_vec(&1.5f32), Err(CanonicalError::Float(_))));
    }

    #[test]
    fn refuses_non_canonical_input() {
        let cases: &[(&str, &[u8])] = &[
            ("float", b"1.5"),
            ("float integral", b"1.0"),
            ("exponent", b"1e3"),
            ("too big", b"18446744073709551616"),
            ("negative zero", b"-0"),
            ("space", b"{\"a\": 1}"),
            ("trailing newline", b"{\"a\":1}\n"),
            ("key order", b"{\"b\":1,\"a\":2}"),
            ("duplicate key", b"{\"a\":1,\"a\":1}"),
            ("needless escape", b"\"\\u0041\""),
            ("escaped slash", b"\"\\/\""),
            ("uppercase hex escape", b"\"\\u001F\""),
            ("long form of newline", b"\"\\u000a\""),
            ("truncated", b"{\"a\":"),
            ("invalid utf-8", b"\"\xff\""),
            ("trailing garbage", b"{} {}"),
            ("empty", b""),
        ];
        for (name, bytes) in cases {
            assert!(from_slice::<Value>(bytes).is_err(), "{name} accepted");
        }
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trips(value in arb_value()) {
            let bytes = to_vec(&value).unwrap();
            let parsed: Value = from_slice(&bytes).unwrap();
            prop_assert_eq!(&parsed, &value);
            prop_assert_eq!(to_vec(&parsed).unwrap(), bytes);
        }

        #[test]
        fn pretty_printed_is_refused_unless_already_canonical(value in arb_value()) {
            let pretty = serde_json::to_vec_pretty(&value).unwrap();
            let canonical = to_vec(&value).unwrap();
            prop_assert_eq!(from_slice::<Value>(&pretty).is_ok(), pretty == canonical);
        }
    }
}
