//! Pure policy: when the daemon checks next (interval ± 10 % jitter derived from the machine id,
//! so a fleet spreads out deterministically), and the kernel command line of a new boot entry.
//! No clock is read here: callers pass `now`.

use sha2::{Digest, Sha256};

/// Jitter as a fraction of the interval: checks happen at `interval ± 10 %`.
pub const JITTER_PERCENT: u64 = 10;

/// The delay before check number `round` (0, 1, ...) of the machine with id `machine_id`:
/// `interval ± 10 %`, the same for the same inputs. Never 0 when `interval > 0`.
pub fn jittered_interval(interval_secs: u64, machine_id: &[u8], round: u64) -> u64 {
    let span =
        interval_secs / 100 * JITTER_PERCENT * 2 + (interval_secs % 100) * JITTER_PERCENT * 2 / 100;
    let digest = Sha256::new()
        .chain_update(machine_id)
        .chain_update(round.to_le_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let offset = if span == 0 {
        0
    } else {
        u64::from_le_bytes(first) % (span + 1)
    };
    // interval - span/2 + offset, without underflow or overflow.
    let low = interval_secs - span / 2;
    low.saturating_add(offset).max(interval_secs.min(1))
}

/// When to check next after a check at `now`.
pub fn next_check_at(now: u64, interval_secs: u64, machine_id: &[u8], round: u64) -> u64 {
    now.saturating_add(jittered_interval(interval_secs, machine_id, round))
}

/// The kernel command line for a new slot's entry: the booted entry's `options` line without
/// its `usr=` argument (the entry adds its own `usr=PARTUUID=`). `None` if the text has no
/// `options` line. Arguments are the kernel's (and `/init`'s, `contract::cmdline::split_args`):
/// whitespace inside double quotes does not separate them, so dropping `usr=` never leaves
/// half of a quoted value behind.
pub fn cmdline_for_new_slot(booted_entry_text: &str) -> Option<String> {
    let options = booted_entry_text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("options"))
        .find(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))?;
    Some(
        kernel_args(options)
            .into_iter()
            .filter(|arg| !arg.replace('"', "").starts_with("usr="))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The arguments of a command line as the kernel separates them, quotes kept.
fn kernel_args(cmdline: &str) -> Vec<&str> {
    let mut args = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in cmdline.char_indices() {
        if c.is_whitespace() && !quoted {
            if let Some(s) = start.take() {
                args.push(&cmdline[s..i]);
            }
            continue;
        }
        if c == '"' {
            quoted = !quoted;
        }
        start.get_or_insert(i);
    }
    args.extend(start.map(|s| &cmdline[s..]));
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn jitter_within_ten_percent(interval in 0u64..10_000_000, id in prop::collection::vec(any::<u8>(), 0..40), round in any::<u64>()) {
            let d = jittered_interval(interval, &id, round);
            prop_assert!(d * 10 >= interval * 9, "{} < 90% of {}", d, interval);
            prop_assert!(d * 10 <= interval * 11 + 10, "{} > 110% of {}", d, interval);
            prop_assert_eq!(d, jittered_interval(interval, &id, round));
            if interval > 0 { prop_assert!(d > 0); }
        }
        #[test]
        fn jitter_never_overflows(interval in any::<u64>(), round in any::<u64>()) {
            let _ = next_check_at(u64::MAX - 5, interval, b"m", round);
            let _ = jittered_interval(interval, b"m", round);
        }
    }

    #[test]
    fn machines_spread_out() {
        let delays: std::collections::BTreeSet<u64> = (0u8..50)
            .map(|i| jittered_interval(3600, &[i], 0))
            .collect();
        assert!(delays.len() > 20, "{delays:?}");
        assert!(delays.iter().all(|d| (3240..=3960).contains(d)));
    }

    #[test]
    fn cmdline_rewriting() {
        struct Case {
            name: &'static str,
            input: &'static str,
            want: Option<&'static str>,
        }
        let cases = [
            Case {
                name: "usr at the end",
                input: "title x\nversion 1.0.0\noptions console=ttyS0 panic=10 usr=PARTUUID=abc\n",
                want: Some("console=ttyS0 panic=10"),
            },
            Case {
                name: "usr in the middle, extra spaces",
                input: "options  root=LABEL=ROOT  usr=PARTUUID=abc   quiet\n",
                want: Some("root=LABEL=ROOT quiet"),
            },
            Case {
                name: "usrfoo= is not usr=",
                input: "options usrfoo=1 usr=PARTUUID=x\n",
                want: Some("usrfoo=1"),
            },
            Case {
                name: "optionsx is not options",
                input: "optionsx a\noptions b usr=x\n",
                want: Some("b"),
            },
            Case {
                // Found by the `boot_entry` fuzz target: splitting at every space left `b"` of
                // the quoted value, whose quote then hid the new `usr=` from /init.
                name: "a quoted space inside usr= is one argument",
                input: "options x usr=PARTUUID=old\"a b\" y usr=PARTUUID=abc\n",
                want: Some("x y"),
            },
            Case {
                name: "quoted arguments stay whole",
                input: "options  a=\"1  2\" \"usr=q\" b usr=x\n",
                want: Some("a=\"1  2\" b"),
            },
            Case {
                name: "no options",
                input: "title x\n",
                want: None,
            },
        ];
        for c in cases {
            assert_eq!(
                cmdline_for_new_slot(c.input).as_deref(),
                c.want,
                "{}",
                c.name
            );
        }
    }
}
