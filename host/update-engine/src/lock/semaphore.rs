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
//! Two deliberate differences:
//! - [`Semaphore::lock`] checks "already a holder" before "full", so a holder asking again gets
//!   [`SemaphoreError::AlreadyHeld`] (which callers may treat as a recursive success, as
//!   FleetLock does) even when its own slot was the last one. locksmith reports "semaphore is at
//!   0" in that case.
//! - The holders are the truth, not the `semaphore` count. locksmith trusts both fields as it
//!   finds them, so a value whose fields disagree (a hand edit, an old or foreign client) stays
//!   wrong, or gets worse: with a holder listed twice, one unlock leaves more free slots than
//!   `max` and the holder still listed. Here [`Semaphore::problems`] names each disagreement,
//!   and every operation ([`Semaphore::lock`], [`Semaphore::unlock`], [`Semaphore::set_max`])
//!   starts from [`Semaphore::repaired`]: holders sorted, each listed once, a negative `max` as
//!   0, and `semaphore = max - holders`. A listed holder believes it holds the lock, so the
//!   repair never drops one (not even an empty id, which it reports and keeps); when there are
//!   more holders than `max` the count is negative and nobody gets a slot until enough of them
//!   unlock. So a lock never succeeds with `max` holders or more, whatever the stored count
//!   says, and a value written after any operation is consistent. A consistent value is its own
//!   repair: its bytes stay locksmith's.

use std::collections::BTreeMap;
use std::fmt;

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

/// One way a stored semaphore's fields disagree ([`Semaphore::problems`]). The texts are for
/// operators (`locksmithctl status` prints them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// `max` is below 0 (only a hand edit does that: `set-max` takes no negative number); it
    /// counts as 0, and the repair writes 0.
    NegativeMax {
        /// `max`.
        max: i64,
    },
    /// A holder's id is empty. It may be a machine with an empty machine id, so it keeps its
    /// slot, and the repair keeps it (the one problem it leaves): `locksmithctl unlock ""`
    /// removes it.
    EmptyHolder,
    /// `id` is listed more than once.
    DuplicateHolder {
        /// The holder.
        id: String,
        /// How many times it is listed.
        times: usize,
    },
    /// The holders are not in byte order (locksmith's binary search would miss some).
    Unsorted,
    /// `semaphore` is not `max` minus the distinct holders.
    WrongCount {
        /// The stored `semaphore`.
        semaphore: i64,
        /// `max` (0 if negative).
        max: i64,
        /// The distinct holders.
        holders: usize,
        /// What `semaphore` should be: `max - holders`.
        free: i64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NegativeMax { max } => write!(f, "Max is {max}, below 0 (taken as 0)"),
            Problem::EmptyHolder => {
                write!(
                    f,
                    "a holder has an empty id (`locksmithctl unlock \"\"` removes it)"
                )
            }
            Problem::DuplicateHolder { id, times } => {
                write!(f, "holder {id:?} is listed {times} times")
            }
            Problem::Unsorted => write!(f, "the holders are not sorted"),
            Problem::WrongCount {
                semaphore,
                max,
                holders,
                free,
            } => {
                let s = if *holders == 1 { "" } else { "s" };
                write!(
                    f,
                    "Available is {semaphore}, but Max {max} minus {holders} \
                     holder{s} is {free}"
                )
            }
        }
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

    /// The free slots as the holders say: `max` (0 if negative) minus the distinct holders
    /// (negative when there are more holders than `max`). Equals `semaphore` when the value is
    /// consistent.
    pub fn available(&self) -> i64 {
        let distinct = self.holders_listed().len();
        self.max
            .max(0)
            .saturating_sub(i64::try_from(distinct).unwrap_or(i64::MAX))
    }

    /// Whether no slot is free: [`Semaphore::available`] is 0 or less (locksmith tests
    /// `semaphore <= 0`; the two agree on a consistent value).
    pub fn is_full(&self) -> bool {
        self.available() <= 0
    }

    /// How many times each holder is listed.
    fn holders_listed(&self) -> BTreeMap<&str, usize> {
        let mut listed = BTreeMap::new();
        for h in self.holders() {
            *listed.entry(h.as_str()).or_insert(0) += 1;
        }
        listed
    }

    /// Where the fields disagree, in a fixed order: empty for the values locksmith writes, and
    /// after any operation here unless a holder id is empty ([`Problem::EmptyHolder`]). Pure.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.max < 0 {
            problems.push(Problem::NegativeMax { max: self.max });
        }
        let listed = self.holders_listed();
        if listed.contains_key("") {
            problems.push(Problem::EmptyHolder);
        }
        for (id, &times) in &listed {
            if times > 1 {
                problems.push(Problem::DuplicateHolder {
                    id: (*id).to_owned(),
                    times,
                });
            }
        }
        if self.holders().windows(2).any(|w| w[0] > w[1]) {
            problems.push(Problem::Unsorted);
        }
        let free = self.available();
        if self.semaphore != free {
            problems.push(Problem::WrongCount {
                semaphore: self.semaphore,
                max: self.max.max(0),
                holders: listed.len(),
                free,
            });
        }
        problems
    }

    /// The consistent value this one stands for: the holders sorted and each listed once (none
    /// dropped, an empty id neither), `max` kept (0 if negative), `semaphore = max - holders`.
    /// Its only possible problem is [`Problem::EmptyHolder`]. A consistent value is returned
    /// unchanged (`null` holders stay `null`). Pure.
    pub fn repaired(&self) -> Semaphore {
        let holders = self.holders.clone().map(|mut h| {
            h.sort();
            h.dedup();
            h
        });
        Semaphore {
            semaphore: self.available(),
            max: self.max.max(0),
            holders,
        }
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

    /// Takes a slot for `id` in the [repaired](Semaphore::repaired) value: inserts it among the
    /// sorted holders and decrements `semaphore`. Fails with [`SemaphoreError::AlreadyHeld`] if
    /// `id` is a holder (checked first), else with [`SemaphoreError::Full`] if no slot is free
    /// ([`Semaphore::is_full`]: whatever `semaphore` says, never with `max` holders or more).
    /// Changes nothing on failure.
    pub fn lock(&mut self, id: &str) -> Result<(), SemaphoreError> {
        let mut next = self.repaired();
        if next.holds(id) {
            return Err(SemaphoreError::AlreadyHeld { id: id.to_owned() });
        }
        if next.is_full() {
            return Err(SemaphoreError::Full {
                max: next.max,
                available: next.semaphore,
                holders: next.holders().to_vec(),
            });
        }
        let holders = next.holders.get_or_insert_with(Vec::new);
        let at = holders.partition_point(|h| h.as_str() < id);
        holders.insert(at, id.to_owned());
        next.semaphore = next.semaphore.saturating_sub(1);
        *self = next;
        Ok(())
    }

    /// Releases `id`'s slot in the [repaired](Semaphore::repaired) value: removes it from the
    /// holders (every entry, if it was listed more than once) and increments `semaphore`. Fails
    /// with [`SemaphoreError::NotHeld`] (changing nothing) if `id` is not a holder.
    pub fn unlock(&mut self, id: &str) -> Result<(), SemaphoreError> {
        if !self.holds(id) {
            return Err(SemaphoreError::NotHeld { id: id.to_owned() });
        }
        let mut next = self.repaired();
        if let Some(holders) = next.holders.as_mut() {
            holders.retain(|h| h != id);
        }
        next.semaphore = next.semaphore.saturating_add(1);
        *self = next;
        Ok(())
    }

    /// Sets `max` to `max` (0 if negative) in the [repaired](Semaphore::repaired) value, so
    /// `semaphore` moves by the same difference (current holders keep their slots; `semaphore`
    /// goes negative when `max` drops below their number). Returns the old `max`.
    pub fn set_max(&mut self, max: i64) -> i64 {
        let old = self.max;
        self.max = max;
        *self = self.repaired();
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

    #[test]
    fn values_locksmith_writes_are_consistent_and_their_own_repair() {
        for v in LOCKSMITH_VALUES {
            let s = Semaphore::from_json(v.as_bytes()).unwrap();
            assert!(s.problems().is_empty(), "{v}: {:?}", s.problems());
            assert_eq!(s.repaired().to_json(), *v);
        }
    }

    struct Case {
        name: &'static str,
        stored: &'static str,
        problems: &'static [&'static str],
        repaired: &'static str,
        /// The problems the repair leaves.
        kept: &'static [&'static str],
    }

    const INCONSISTENT: &[Case] = &[
        Case {
            name: "a holder listed twice, counted twice",
            stored: r#"{"semaphore":-1,"max":1,"holders":["a","a"]}"#,
            problems: &[
                r#"holder "a" is listed 2 times"#,
                "Available is -1, but Max 1 minus 1 holder is 0",
            ],
            repaired: r#"{"semaphore":0,"max":1,"holders":["a"]}"#,
            kept: &[],
        },
        Case {
            name: "a holder listed three times, counted once",
            stored: r#"{"semaphore":1,"max":3,"holders":["a","b","b","b"]}"#,
            problems: &[r#"holder "b" is listed 3 times"#],
            repaired: r#"{"semaphore":1,"max":3,"holders":["a","b"]}"#,
            kept: &[],
        },
        Case {
            name: "more free slots than max",
            stored: r#"{"semaphore":5,"max":1,"holders":["a"]}"#,
            problems: &["Available is 5, but Max 1 minus 1 holder is 0"],
            repaired: r#"{"semaphore":0,"max":1,"holders":["a"]}"#,
            kept: &[],
        },
        Case {
            name: "fewer free slots than the holders leave",
            stored: r#"{"semaphore":0,"max":3,"holders":null}"#,
            problems: &["Available is 0, but Max 3 minus 0 holders is 3"],
            repaired: r#"{"semaphore":3,"max":3,"holders":null}"#,
            kept: &[],
        },
        Case {
            name: "unsorted, more holders than max, counted as free",
            stored: r#"{"semaphore":1,"max":2,"holders":["c","a","b"]}"#,
            problems: &[
                "the holders are not sorted",
                "Available is 1, but Max 2 minus 3 holders is -1",
            ],
            repaired: r#"{"semaphore":-1,"max":2,"holders":["a","b","c"]}"#,
            kept: &[],
        },
        Case {
            name: "negative max",
            stored: r#"{"semaphore":1,"max":-1,"holders":[]}"#,
            problems: &[
                "Max is -1, below 0 (taken as 0)",
                "Available is 1, but Max 0 minus 0 holders is 0",
            ],
            repaired: r#"{"semaphore":0,"max":0,"holders":[]}"#,
            kept: &[],
        },
        Case {
            name: "an empty holder id (kept: it counts)",
            stored: r#"{"semaphore":1,"max":2,"holders":["","a"]}"#,
            problems: &[
                r#"a holder has an empty id (`locksmithctl unlock ""` removes it)"#,
                "Available is 1, but Max 2 minus 2 holders is 0",
            ],
            repaired: r#"{"semaphore":0,"max":2,"holders":["","a"]}"#,
            kept: &[r#"a holder has an empty id (`locksmithctl unlock ""` removes it)"#],
        },
    ];

    #[test]
    fn inconsistent_values_are_named_and_repaired() {
        for c in INCONSISTENT {
            let s = Semaphore::from_json(c.stored.as_bytes()).unwrap();
            let texts = |s: &Semaphore| -> Vec<String> {
                s.problems().iter().map(|p| p.to_string()).collect()
            };
            assert_eq!(texts(&s), c.problems, "{}", c.name);
            let repaired = s.repaired();
            assert_eq!(repaired.to_json(), c.repaired, "{}", c.name);
            assert_eq!(texts(&repaired), c.kept, "{}", c.name);
            assert_eq!(repaired.repaired(), repaired, "{}", c.name);
            assert_eq!(repaired.available(), s.available(), "{}", c.name);
        }
    }

    #[test]
    fn one_unlock_of_a_holder_listed_twice_frees_exactly_its_slot() {
        // The issue: locksmith's unlock removes one entry and adds a slot, leaving 1 free slot
        // of 1 and "a" still listed.
        let mut s =
            Semaphore::from_json(br#"{"semaphore":0,"max":1,"holders":["a","a"]}"#).unwrap();
        s.unlock("a").unwrap();
        assert_eq!(s.to_json(), r#"{"semaphore":1,"max":1,"holders":[]}"#);
        assert_eq!(
            s.unlock("a"),
            Err(SemaphoreError::NotHeld { id: "a".into() })
        );
        let mut s =
            Semaphore::from_json(br#"{"semaphore":0,"max":2,"holders":["b","a","b"]}"#).unwrap();
        s.unlock("b").unwrap();
        assert_eq!(s.to_json(), r#"{"semaphore":1,"max":2,"holders":["a"]}"#);
    }

    #[test]
    fn lock_goes_by_the_holders_not_the_stored_count() {
        // Counted free, but the one slot is a's.
        let stored = br#"{"semaphore":5,"max":1,"holders":["a"]}"#;
        let mut s = Semaphore::from_json(stored).unwrap();
        assert!(s.is_full());
        assert_eq!(
            s.lock("b"),
            Err(SemaphoreError::Full {
                max: 1,
                available: 0,
                holders: ids(&["a"])
            })
        );
        assert_eq!(s.to_json().as_bytes(), stored, "a refusal changes nothing");
        // A holder listed twice holds one slot, and is a holder.
        let mut s =
            Semaphore::from_json(br#"{"semaphore":0,"max":2,"holders":["a","a"]}"#).unwrap();
        assert_eq!(
            s.lock("a"),
            Err(SemaphoreError::AlreadyHeld { id: "a".into() })
        );
        s.lock("b").unwrap();
        assert_eq!(
            s.to_json(),
            r#"{"semaphore":0,"max":2,"holders":["a","b"]}"#
        );
        // More holders than max (and counted free): nobody until two have left.
        let mut s =
            Semaphore::from_json(br#"{"semaphore":3,"max":2,"holders":["c","a","b"]}"#).unwrap();
        assert!(matches!(
            s.lock("d"),
            Err(SemaphoreError::Full { available: -1, .. })
        ));
        s.unlock("c").unwrap();
        assert_eq!(
            s.to_json(),
            r#"{"semaphore":0,"max":2,"holders":["a","b"]}"#
        );
        assert!(s.lock("d").is_err());
        s.unlock("a").unwrap();
        s.lock("d").unwrap();
        assert_eq!(
            s.to_json(),
            r#"{"semaphore":0,"max":2,"holders":["b","d"]}"#
        );
        // A negative max: nobody.
        let mut s = Semaphore::from_json(br#"{"semaphore":3,"max":-1,"holders":null}"#).unwrap();
        assert!(s.lock("a").is_err());
    }

    #[test]
    fn set_max_repairs_too() {
        let mut s =
            Semaphore::from_json(br#"{"semaphore":7,"max":1,"holders":["b","a","a"]}"#).unwrap();
        assert_eq!(s.set_max(3), 1);
        assert_eq!(
            s.to_json(),
            r#"{"semaphore":1,"max":3,"holders":["a","b"]}"#
        );
        let mut s = Semaphore::from_json(br#"{"semaphore":0,"max":-4,"holders":null}"#).unwrap();
        assert_eq!(s.set_max(2), -4);
        assert_eq!(s.to_json(), r#"{"semaphore":2,"max":2,"holders":null}"#);
        assert_eq!(s.set_max(-3), 2);
        assert_eq!(s.to_json(), r#"{"semaphore":0,"max":0,"holders":null}"#);
    }

    #[test]
    fn unlock_of_a_stranger_changes_nothing_even_when_inconsistent() {
        let stored = br#"{"semaphore":9,"max":1,"holders":["b","a","a"]}"#;
        let mut s = Semaphore::from_json(stored).unwrap();
        assert_eq!(
            s.unlock("c"),
            Err(SemaphoreError::NotHeld { id: "c".into() })
        );
        assert_eq!(s.to_json().as_bytes(), stored);
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

        #[test]
        fn any_stored_value_is_repaired_by_the_first_write_and_never_over_admits(
            semaphore in -3i64..6,
            max in -1i64..4,
            stored in proptest::option::of(proptest::collection::vec(0u8..6, 0..7)),
            ops in proptest::collection::vec((0u8..6, 0u8..3), 0..40),
        ) {
            let holders = stored.map(|h| h.iter().map(|i| format!("m{i}")).collect::<Vec<_>>());
            let mut s = Semaphore { semaphore, max, holders };
            let ghosts: std::collections::BTreeSet<String> = s.holders().iter().cloned().collect();
            for (who, op) in ops {
                let id = format!("m{who}");
                let before = s.clone();
                let r = match op {
                    0 => s.lock(&id),
                    1 => s.unlock(&id),
                    _ => {
                        s.set_max(max);
                        Ok(())
                    }
                };
                match r {
                    Err(_) => proptest::prop_assert_eq!(&s, &before),
                    Ok(()) => {
                        proptest::prop_assert!(s.problems().is_empty(), "{:?}", s.problems());
                        // Only a holder's own unlock removes it.
                        for h in before.holders() {
                            proptest::prop_assert!(s.holds(h) || (op == 1 && *h == id));
                        }
                    }
                }
                if op == 0 && r.is_ok() {
                    proptest::prop_assert!(s.holders().len() as i64 <= max);
                }
                // Newcomers never push the holders past max.
                let newcomers = s.holders().iter().filter(|h| !ghosts.contains(*h)).count();
                if newcomers > 0 {
                    proptest::prop_assert!(s.holders().len() as i64 <= max);
                }
            }
        }
    }
}
