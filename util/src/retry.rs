//! The one HTTP retry policy of the workspace: the builder's package downloads, the config
//! agent's user-data and metadata fetches and the update engine's channel and payload downloads
//! all retry the same failures on the same schedule; only the bounds differ per use, as named
//! constants here.
//!
//! - **What is retried:** connection errors, timeouts, a body cut short, and HTTP 408, 429 and
//!   500-599 ([`retryable_status`]). Anything else (other 4xx, a body larger than allowed, a
//!   hash mismatch, a bad signature) fails at once: trying again cannot fix it.
//! - **Backoff:** the wait after failure `n` (0-based) is `first_delay * 2^n`, capped at
//!   `max_delay`.
//! - **Bound:** at most `attempts` failures in a row; a transfer that resumes (a payload
//!   download continuing with a byte range) starts a new row each time it made progress, and
//!   gives up after `max_failures` failures in all.
//! - Each attempt has its own `connect_timeout` and `timeout` (for a whole small document, or
//!   for each read of a long body).

use std::time::Duration;

/// When and how often a request is tried again (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures in a row after which to give up (the first attempt counts; 0 counts as 1).
    pub attempts: u32,
    /// Failures in all after which a resuming transfer gives up, progress or not.
    pub max_failures: u32,
    /// Wait after the first failure; doubled after each further one.
    pub first_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
    /// Connecting may take this long.
    pub connect_timeout: Duration,
    /// One attempt (or, for a streamed body, each read) may take this long.
    pub timeout: Duration,
}

impl Policy {
    /// The builder's GETs of apt indexes and packages: 4 attempts, waits 0.5 + 1 + 2 s; a large
    /// `.deb` on a slow link may take minutes, so the timeout bounds each read.
    pub const DOWNLOAD: Policy = Policy {
        attempts: 4,
        max_failures: 4,
        first_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(4),
        connect_timeout: Duration::from_secs(15),
        timeout: Duration::from_secs(60),
    };

    /// User-data URLs (`cloud-config-url=`, `--from-url`, guestinfo URLs): 6 attempts, waits
    /// 1 + 2 + 4 + 8 + 8 s, 10 s per attempt: a machine whose network comes up late still
    /// gets its config, one without a config server gives up in under a minute.
    pub const CONFIG_URL: Policy = Policy {
        attempts: 6,
        max_failures: 6,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(8),
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
    };

    /// EC2 instance metadata (link-local, answers at once or not at all): 3 attempts, waits
    /// 0.5 + 1 s, 1 s to connect, 5 s per attempt.
    pub const METADATA: Policy = Policy {
        attempts: 3,
        max_failures: 3,
        first_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
    };

    /// The update engine's channel documents and payloads: 12 failures in a row without
    /// progress, 100 in all, 5 s apart; 30 s per connect, response head or body read. A
    /// payload download survives a minute of outage and resumes where it stopped.
    pub const CHANNEL: Policy = Policy {
        attempts: 12,
        max_failures: 100,
        first_delay: Duration::from_secs(5),
        max_delay: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(30),
        timeout: Duration::from_secs(30),
    };

    /// The wait after failure number `failure` (0-based): `first_delay * 2^failure`, capped.
    pub fn delay(&self, failure: u32) -> Duration {
        let factor = 1u32.checked_shl(failure.min(16)).unwrap_or(u32::MAX);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// A fresh count of failures for one request or transfer.
    pub fn start(&self) -> Backoff {
        Backoff {
            policy: *self,
            in_row: 0,
            total: 0,
        }
    }
}

/// Whether an HTTP status is worth another attempt: 408, 429 and 5xx.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// The failures of one request or transfer so far, against its [`Policy`]. Pure: the caller
/// sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    policy: Policy,
    in_row: u32,
    total: u32,
}

impl Backoff {
    /// Record a retryable failure. `progress`: whether the attempt moved the transfer forward
    /// (a resumed download received bytes), which starts a new row. Returns how long to wait
    /// before the next attempt, or `None` when the policy says to give up.
    pub fn failed(&mut self, progress: bool) -> Option<Duration> {
        if progress {
            self.in_row = 0;
        }
        self.in_row += 1;
        self.total += 1;
        if self.in_row >= self.policy.attempts.max(1)
            || self.total >= self.policy.max_failures.max(1)
        {
            return None;
        }
        Some(self.policy.delay(self.in_row - 1))
    }

    /// Failures recorded so far.
    pub fn failures(&self) -> u32 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn statuses() {
        for s in [408, 429, 500, 502, 503, 599] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 206, 301, 400, 401, 403, 404, 416, 600, 0] {
            assert!(!retryable_status(s), "{s}");
        }
    }

    #[test]
    fn schedules() {
        let waits = |p: Policy| {
            let mut b = p.start();
            std::iter::from_fn(|| b.failed(false)).collect::<Vec<_>>()
        };
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(waits(Policy::DOWNLOAD), [ms(500), s(1), s(2)]);
        assert_eq!(waits(Policy::CONFIG_URL), [s(1), s(2), s(4), s(8), s(8)]);
        assert_eq!(waits(Policy::METADATA), [ms(500), s(1)]);
        assert_eq!(waits(Policy::CHANNEL), vec![s(5); 11]);
    }

    #[test]
    fn progress_starts_a_new_row_until_the_total_bound() {
        let mut b = Policy::CHANNEL.start();
        for _ in 0..11 {
            assert!(b.failed(false).is_some());
        }
        // The 12th failure in a row would end it; progress before it starts a new row.
        assert!(b.failed(true).is_some());
        let mut n = b.failures();
        while b.failed(true).is_some() {
            n += 1;
        }
        assert_eq!(n + 1, Policy::CHANNEL.max_failures);
    }

    proptest! {
        #[test]
        fn delays_grow_and_are_capped(first in 0u64..10_000, max in 0u64..100_000, n in 0u32..10_000) {
            let p = Policy {
                first_delay: Duration::from_millis(first),
                max_delay: Duration::from_millis(max),
                ..Policy::DOWNLOAD
            };
            prop_assert!(p.delay(n) <= p.max_delay);
            prop_assert!(p.delay(n) <= p.delay(n + 1) || p.delay(n + 1) == p.max_delay);
        }

        #[test]
        fn gives_up_within_the_bound(attempts in 0u32..50, total in 0u32..50, progress in proptest::collection::vec(any::<bool>(), 0..200)) {
            let p = Policy { attempts, max_failures: total, ..Policy::DOWNLOAD };
            let mut b = p.start();
            let mut tries = 0;
            for &made in &progress {
                tries += 1;
                if b.failed(made).is_none() {
                    break;
                }
            }
            prop_assert!(tries <= total.max(1));
        }
    }
}
