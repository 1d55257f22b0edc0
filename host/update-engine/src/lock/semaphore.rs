//! locksmith's reboot semaphore as a value (SPECS.md S2; flatcar/locksmith `lock/semaphore.go`):
//! the JSON document `{"semaphore":N,"max":M,"holders":[…]}` stored in etcd, and the pure
//! operations on it. Nothing here touches etcd: [`super::etcd`] reads a value, applies one of
//! these operations and writes the result back with a compare-and-swap.
//!
//! Compatibility with locksmith, byte for byte:
//! - The fields are written in locksmith's order, compact, with Go's `encoding/json` string
//!   escaping (`<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`, … like Go's HTML-safe
//!   default).
//! - Go distinguishes a nil holders slice (`null`) from an empty one (`[]`): locksmith creates the
//!   semaphore with `null` (its `newSemaphore()` holds a nil slice) and writes `[]` once the last
//!   holder has unlocked. [`Semaphore`] keeps that distinction, so a value read from etcd is
//!   written back unchanged and a fresh one looks exactly like locksmith's:
//!   `{"semaphore":1,"max":1,"holders":null}`. Readers accept both.
//! - Holders are kept sorted (byte order, as Go's `sort.SearchStrings`); a new holder is inserted
//!   at its sorted place.
//!
//! One deliberate difference: [`Semaphore::lock`] checks "already a holder" before "full", so a
//! holder asking again gets [`SemaphoreError::AlreadyHeld`] (which callers may treat as a
//! recursive success, as FleetLock does) even when its own slot was the last one. locksmith
//! reports "semaphore is at 0" in that case.

use serde::Deserialize;

/// Why an operation on the semaphore was refused, or a value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SemaphoreError {
    /// No slot is free.
    #[error("semaphore is full: {available} of {max} slots available, held by {}", holders_text(.holders))]
    Full {
        /// `max`.
        max: i64,
        /// `semaphore` (0 or less).
        available: i64,
        /// The current holders.
        holders: Vec<String>,
    },
    /// `id` is a holder already (locksmith: "holder exists").
    #[error("{id} already holds the lock")]
    AlreadyHeld {
        /// The id.
        id: String,
    },
    /// `id` is not a holder (locksmith: "holder does not exist").
    #[error("{id} does not hold the lock")]
    NotHeld {
        /// The id.
        id: String,
    },
    /// The bytes are not a locksmith semaphore.
    #[error("not a locksmith semaphore: {reason}")]
    Parse {
        /// What is wrong.
        reason: String,
    },
}

/// `a, b` or `nobody`.
pub(crate) fn holders_text(holders: &[String]) -> String {
    if holders.is_empty() {
        "nobody".to_owned()
    } else {
        holders.join(", ")
    }
}

/// The semaphore value: `semaphore` free slots out of `max`, and the sorted holders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Semaphore {
    /// Free slots (`max - holders`, unless `set-max` went below the number of holders: then
    /// negative, as in locksmith).
    pub semaphore: i64,
    /// The number of machines that may hold the lock at once.
    pub max: i64,
    /// `None` is Go's nil slice (`null` in JSON), `Some(empty)` is `[]`.
    holders: Option<Vec<String>>,
}

impl Default for Semaphore {
    fn default() -> Semaphore {
        Semaphore::new()
    }
}

/// The JSON as locksmith's Go struct reads it: missing numbers are 0, `null` holders are none.
#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    semaphore: i64,
    #[serde(default)]
    max: i64,
    #[serde(default)]
    holders: Option<Vec<String>>,
}

impl Semaphore {
    /// A fresh semaphore as locksmith creates it: one slot, no holders (`"holders":null`).
    pub fn new() -> Semaphore {
        Semaphore {
            semaphore: 1,
            max: 1,
            holders: None,
        }
    }

    /// A semaphore with these fields (`holders` are sorted; an empty list is written as `[]`).
    pub fn with_holders(semaphore: i64, max: i64, mut holders: Vec<String>) -> Semaphore {
        holders.sort();
        Semaphore {
            semaphore,
            max,
            holders: Some(holders),
        }
    }

    /// The holders, sorted.
    pub fn holders(&self) -> &[String] {
        self.holders.as_deref().unwrap_or_default()
    }

    /// Whether `id` holds the lock.
    pub fn holds(&self, id: &str) -> bool {
        // Linear, not a binary search: a value written by another tool may be unsorted.
        self.holders().iter().any(|h| h == id)
    }

    /// Whether no slot is free (locksmith's test: `semaphore <= 0`).
    pub fn is_full(&self) -> bool {
        self.semaphore <= 0
    }

    /// Parses the JSON stored in etcd. Pure.
    pub fn from_json(bytes: &[u8]) -> Result<Semaphore, SemaphoreError> {
        // Go would read `null` as a zero semaphore; that is no semaphore.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(SemaphoreError::Parse {
                reason: "not a JSON object".into(),
            });
        }
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| SemaphoreError::Parse {
            reason: e.to_string(),
        })?;
        Ok(Semaphore {
            semaphore: raw.semaphore,
            max: raw.max,
            holders: raw.holders,
        })
    }

    /// The JSON locksmith writes for this value (compact, Go's escaping). Pure.
    pub fn to_json(&self) -> String {
        let mut out = format!(
            "{{\"semaphore\":{},\"max\":{},\"holders\":",
            self.semaphore, self.max
        );
        match &self.holders {
            None => out.push_str("null"),
            Some(holders) => {
                out.push('[');
                for (i, h) in holders.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    go_json_string(h, &mut out);
                }
                out.push(']');
            }
        }
        out.push('}');
        out
    }

    /// Takes a slot for `id`: inserts it among the sorted holders and decrements `semaphore`.
    /// Fails with [`SemaphoreError::AlreadyHeld`] if `id` is a holder (checked first), else with
    /// [`SemaphoreError::Full`] if no slot is free. Changes nothing on failure.
    pub fn lock(&mut self, id: &str) -> Result<(), SemaphoreError> {
        if self.holds(id) {
            return Err(SemaphoreError::AlreadyHeld { id: id.to_owned() });
        }
        if self.is_full() {
            return Err(SemaphoreError::Full {
                max: self.max,
                available: self.semaphore,
                holders: self.holders().to_vec(),
            });
        }
        let holders = self.holders.get_or_insert_with(Vec::new);
        let at = holders.partition_point(|h| h.as_str() < id);
        holders.insert(at, id.to_owned());
        self.semaphore = self.semaphore.saturating_sub(1);
        Ok(())
    }

    /// Releases `id`'s slot: removes it from the holders and increments `semaphore`. Fails with
    /// [`SemaphoreError::NotHeld`] (changing nothing) if `id` is not a holder.
    pub fn unlock(&mut self, id: &str) -> Result<(), SemaphoreError> {
        let not_held = || SemaphoreError::NotHeld { id: id.to_owned() };
        let holders = self.holders.as_mut().ok_or_else(not_held)?;
        let at = holders.iter().position(|h| h == id).ok_or_else(not_held)?;
        holders.remove(at);
        self.semaphore = self.semaphore.saturating_add(1);
        Ok(())
    }

    /// Sets `max` to `max`, moving `semaphore` by the same difference (current holders keep
    /// their slots; `semaphore` goes negative when `max` drops below their number). Returns the
    /// old `max`.
    pub fn set_max(&mut self, max: i64) -> i64 {
        let old = self.max;
        let diff = old.saturating_sub(max);
        self.semaphore = self.semaphore.saturating_sub(diff);
        self.max = max;
        old
    }
}

/// Appends `s` as a JSON string the way Go's `encoding/json` writes it by default.
fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Go escapes other control characters as \u00XX (Go 1.22+ writes \b and \f short;
            // locksmith was built before that) and the HTML-sensitive ones as \u00XX too.
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&') => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Values as locksmith (Go's json.Marshal of its Semaphore struct) writes them.
    const LOCKSMITH_VALUES: &[&str] = &[
        r#"{"semaphore":1,"max":1,"holders":null}"#,
        r#"{"semaphore":0,"max":1,"holders":["69d27b356a94476da859461d3a3bc6fd"]}"#,
        r#"{"semaphore":1,"max":1,"holders":[]}"#,
        r#"{"semaphore":2,"max":4,"holders":["a","b"]}"#,
        r#"{"semaphore":-1,"max":1,"holders":["a","b"]}"#,
        r#"{"semaphore":0,"max":1,"holders":["\u003cweird\u0026id\u003e \"q\" \\ \n\u0001"]}"#,
    ];

    #[test]
    fn locksmith_values_round_trip_byte_for_byte() {
        for v in LOCKSMITH_VALUES {
            let s = Semaphore::from_json(v.as_bytes()).unwrap();
            assert_eq!(s.to_json(), *v);
        }
    }

    #[test]
    fn new_is_locksmiths_initial_value() {
        assert_eq!(
            Semaphore::new().to_json(),
            r#"{"semaphore":1,"max":1,"holders":null}"#
        );
    }

    #[test]
    fn same_bytes_as_locksmith_for_a_sequence_of_operations() {
        // Go: newSemaphore(); SetMax(2); Lock("b"); Lock("a"); Unlock("b"); Unlock("a").
        let mut s = Semaphore::new();
        assert_eq!(s.set_max(2), 1);
        assert_eq!(s.to_json(), r#"{"semaphore":2,"max":2,"holders":null}"#);
        s.lock("b").unwrap();
        s.lock("a").unwrap();
        assert_eq!(
            s.to_json(),
            r#"{"semaphore":0,"max":2,"holders":["a","b"]}"#
        );
        s.unlock("b").unwrap();
        assert_eq!(s.to_json(), r#"{"semaphore":1,"max":2,"holders":["a"]}"#);
        s.unlock("a").unwrap();
        assert_eq!(s.to_json(), r#"{"semaphore":2,"max":2,"holders":[]}"#);
    }

    #[test]
    fn reads_what_others_write() {
        // Pretty-printed (the README's form), fields missing, unknown fields.
        let s =
            Semaphore::from_json(b"{\n\t\"semaphore\": 1,\n\t\"max\": 1,\n\t\"holders\": []\n}")
                .unwrap();
        assert_eq!((s.semaphore, s.max, s.holders()), (1, 1, &[][..]));
        let s = Semaphore::from_json(br#"{"max":3,"extra":true}"#).unwrap();
        assert_eq!((s.semaphore, s.max, s.holders().len()), (0, 3, 0));
        assert_eq!(s.to_json(), r#"{"semaphore":0,"max":3,"holders":null}"#);
    }

    #[test]
    fn bad_values_are_parse_errors() {
        for bad in [
            &b""[..],
            b"null",
            b"[]",
            b"{\"semaphore\":1.5}",
            b"{\"holders\":\"a\"}",
            b"{\"holders\":[1]}",
            b"{",
        ] {
            let e = Semaphore::from_json(bad).unwrap_err();
            assert!(matches!(e, SemaphoreError::Parse { .. }), "{bad:?}: {e:?}");
        }
    }

    #[test]
    fn lock_inserts_sorted_and_fails_when_full() {
        let mut s = Semaphore::with_holders(3, 3, vec![]);
        for id in ["m", "a", "z"] {
            s.lock(id).unwrap();
        }
        assert_eq!(s.holders(), ids(&["a", "m", "z"]).as_slice());
        assert_eq!(s.semaphore, 0);
        let before = s.clone();
        assert_eq!(
            s.lock("b"),
            Err(SemaphoreError::Full {
                max: 3,
                available: 0,
                holders: ids(&["a", "m", "z"])
            })
        );
        assert_eq!(s, before);
        assert_eq!(
            s.lock("a").unwrap_err().to_string(),
            "a already holds the lock"
        );
        assert_eq!(
            s.lock("b").unwrap_err().to_string(),
            "semaphore is full: 0 of 3 slots available, held by a, m, z"
        );
    }

    #[test]
    fn already_held_is_reported_before_full() {
        let mut s = Semaphore::new();
        s.lock("a").unwrap();
        assert!(s.is_full());
        assert_eq!(
            s.lock("a"),
            Err(SemaphoreError::AlreadyHeld { id: "a".into() })
        );
    }

    #[test]
    fn unlock_needs_a_holder() {
        let mut s = Semaphore::new();
        assert_eq!(
            s.unlock("a"),
            Err(SemaphoreError::NotHeld { id: "a".into() })
        );
        assert_eq!(s.to_json(), Semaphore::new().to_json());
        s.lock("a").unwrap();
        s.unlock("a").unwrap();
        assert_eq!(
            s.unlock("a"),
            Err(SemaphoreError::NotHeld { id: "a".into() })
        );
        assert_eq!((s.semaphore, s.max), (1, 1));
    }

    #[test]
    fn set_max_moves_both_fields() {
        let mut s = Semaphore::with_holders(0, 2, ids(&["a", "b"]));
        assert_eq!(s.set_max(5), 2);
        assert_eq!((s.semaphore, s.max), (3, 5));
        assert_eq!(s.set_max(1), 5);
        assert_eq!((s.semaphore, s.max), (-1, 1));
        assert!(s.is_full());
        s.unlock("a").unwrap();
        assert!(s.is_full());
        s.unlock("b").unwrap();
        assert_eq!((s.semaphore, s.max), (1, 1));
    }

    #[test]
    fn unsorted_values_from_other_tools_still_work() {
        let mut s =
            Semaphore::from_json(br#"{"semaphore":1,"max":3,"holders":["z","a"]}"#).unwrap();
        assert!(s.holds("a") && s.holds("z"));
        s.unlock("a").unwrap();
        assert_eq!(s.holders(), ids(&["z"]).as_slice());
    }

    proptest::proptest! {
        #[test]
        fn lock_unlock_keep_the_invariant(ops in proptest::collection::vec((0u8..6, proptest::bool::ANY), 0..60), max in 0i64..5) {
            let mut s = Semaphore::new();
            s.set_max(max);
            for (who, lock) in ops {
                let id = format!("m{who}");
                let before = s.clone();
                let r = if lock { s.lock(&id) } else { s.unlock(&id) };
                if r.is_err() {
                    proptest::prop_assert_eq!(&s, &before);
                }
                proptest::prop_assert_eq!(s.semaphore + s.holders().len() as i64, s.max);
                proptest::prop_assert!(s.holders().len() as i64 <= max);
                proptest::prop_assert!(s.holders().windows(2).all(|w| w[0] < w[1]));
                proptest::prop_assert_eq!(Semaphore::from_json(s.to_json().as_bytes()).unwrap(), s.clone());
            }
        }
    }
}
