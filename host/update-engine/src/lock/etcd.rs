//! locksmith's reboot semaphore on a real etcd v3 (SPECS.md S2; DESIGN.md "Reboot
//! coordination"), as a blocking API: [`EtcdLock`] owns a small tokio runtime (one worker
//! thread, which keeps the connection serviced between calls) and an `etcd-client` connection,
//! and each method runs one operation to completion on the calling thread.
//!
//! Keys and value are locksmith's (see [`semaphore_key`] and [`super::semaphore`]), so this
//! library, locksmith-era tools reading the same key and our FleetLock server share one lock.
//! locksmith used etcd's v2 API with `PrevIndex` compare-and-swap; on v3 we do the same with a
//! transaction per change:
//!
//! - read the key (creating it with locksmith's initial value in a `version == 0` transaction
//!   when it is absent: [`EtcdLock::init`]);
//! - compute the new value with a pure [`Semaphore`] operation (each starts from the
//!   [repaired](Semaphore::repaired) value, so a value whose fields disagree, after a hand edit
//!   or an old client, is written back consistent by the next change, and a lock goes by the
//!   holders, never by a stored count that admits more than `max`);
//! - write it in a transaction whose condition is "`mod_revision` is still the one read"; when
//!   another writer won, the transaction's else-branch returns the current value, and the
//!   operation starts over from it after a short random pause, at most [`MAX_ATTEMPTS`] times.
//!
//! Every request is bounded by [`EtcdConfig::timeout`] (connecting by at most
//! [`CONNECT_TIMEOUT`]): an unreachable etcd is an [`EtcdError::Unreachable`] within seconds, never
//! a hang. Nothing retries on that level; callers decide (the engine retries with backoff).
//!
//! ## Holder leases (ours; locksmith has none)
//!
//! A machine that dies while holding the lock blocks its slot until an operator runs
//! `locksmithctl unlock`. With [`EtcdConfig::holder_ttl_secs`] set, [`EtcdLock::lock`] also
//! writes, in the same transaction as the semaphore:
//!
//! - `<semaphore key>/alive/<id>`, attached to a fresh etcd lease of that TTL (etcd deletes it
//!   when the lease runs out);
//! - `<semaphore key>/leased/<id>`, without a lease: the record that `<id>` is lease-managed.
//!
//! A holder is *expired* when its `leased/` record exists and its `alive/` key is gone. When a
//! [`EtcdLock::lock`] finds the semaphore full, it removes the expired holders (and their
//! `leased/` records) in the same compare-and-swap transaction that takes the slot, guarded by
//! "`alive/<h>` still absent" and "`leased/<h>` unchanged". Holders without a `leased/` record
//! (locksmith's, `lock` from the command line, or taken without a TTL) are never removed.
//!
//! Keeping a lease alive is re-granting it: every [`EtcdLock::lock`] of a current holder and
//! every [`EtcdLock::refresh`] grants a new lease and moves the `alive/` key onto it (the old
//! lease is left to run out). There is no background keep-alive stream because the holder does
//! not outlive its process: the engine takes the lock, reboots, and releases it after the new
//! slot is marked good, so the TTL must cover a reboot plus the health check, and the engine
//! calls `lock` (or `refresh`) again once it is back up. [`EtcdLock::unlock`] deletes both keys.

use std::error::Error as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, KeyValue,
    PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse,
};

use super::semaphore::{Semaphore, SemaphoreError};

/// locksmith's key prefix.
pub const KEY_PREFIX: &str = "coreos.com/updateengine/rebootlock";
/// The semaphore of the default group.
pub const DEFAULT_KEY: &str = "coreos.com/updateengine/rebootlock/semaphore";
/// locksmithctl's endpoints when none are configured.
pub const DEFAULT_ENDPOINTS: [&str; 2] = ["http://127.0.0.1:2379", "http://127.0.0.1:4001"];
/// How long one etcd request may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Compare-and-swap attempts before [`EtcdError::Conflict`].
pub const MAX_ATTEMPTS: u32 = 64;
/// The longest pause between two attempts.
const MAX_BACKOFF_MS: u64 = 64;

/// The etcd key of `group`'s semaphore: locksmith's default key for no group, `""` or
/// `"default"` (FleetLock's default group name, so FleetLock clients and locksmith share it),
/// else `…/groups/<url.QueryEscape(group)>/semaphore`.
pub fn semaphore_key(group: Option<&str>) -> String {
    match group {
        None | Some("") | Some("default") => DEFAULT_KEY.to_owned(),
        Some(g) => format!("{KEY_PREFIX}/groups/{}/semaphore", query_escape(g)),
    }
}

/// Go's `url.QueryEscape`: unreserved bytes stay, space becomes `+`, the rest `%XX`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// How to reach etcd, and which semaphore to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client URLs (`http://host:2379`, `https://…`); tried by the client's balancer.
    pub endpoints: Vec<String>,
    /// PEM CA bundle that signed the server certificates (needed for `https://`).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM client key (with `cert_file`).
    pub key_file: Option<PathBuf>,
    /// etcd user name.
    pub username: Option<String>,
    /// etcd password (with `username`).
    pub password: Option<String>,
    /// locksmith group (`None`: the default semaphore).
    pub group: Option<String>,
    /// Holder lease TTL in seconds (`None`: locksmith's lease-less holders). See the module docs.
    pub holder_ttl_secs: Option<u64>,
    /// Bound on each request.
    pub timeout: Duration,
}

/// etcd settings from one source (a command line, locksmithctl's environment, update.conf's
/// `LOCKSMITHD_*` keys); what a source leaves unset falls through to the next one
/// ([`EtcdConfig::resolve`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdSettings {
    /// Client URLs (empty: unset).
    pub endpoints: Vec<String>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// locksmith group.
    pub group: Option<String>,
}

impl EtcdSettings {
    /// locksmithctl's environment: `LOCKSMITHCTL_ENDPOINT` (comma-separated),
    /// `LOCKSMITHCTL_ETCD_CAFILE`, `…_CERTFILE`, `…_KEYFILE`, `…_USERNAME`, `…_PASSWORD`,
    /// `LOCKSMITHCTL_GROUP`; an empty value is unset. Pure (`env` reads a variable).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> EtcdSettings {
        let var = |k: &str| env(&format!("LOCKSMITHCTL_{k}")).filter(|v| !v.is_empty());
        EtcdSettings {
            endpoints: var("ENDPOINT")
                .map(|e| contract::update_conf::split_list(&e))
                .unwrap_or_default(),
            ca_file: var("ETCD_CAFILE").map(PathBuf::from),
            cert_file: var("ETCD_CERTFILE").map(PathBuf::from),
            key_file: var("ETCD_KEYFILE").map(PathBuf::from),
            username: var("ETCD_USERNAME"),
            password: var("ETCD_PASSWORD"),
            group: var("GROUP"),
        }
    }
}

impl EtcdConfig {
    /// Each setting from the first of `sources` that has it, else locksmithctl's default;
    /// without a holder TTL and with the default timeout. Pure.
    pub fn resolve(sources: &[&EtcdSettings]) -> EtcdConfig {
        fn first<T: Clone>(
            sources: &[&EtcdSettings],
            f: impl Fn(&EtcdSettings) -> &Option<T>,
        ) -> Option<T> {
            sources.iter().find_map(|s| f(s).clone())
        }
        let endpoints: Vec<String> = sources
            .iter()
            .map(|s| {
                s.endpoints
                    .iter()
                    .map(|e| e.trim().to_owned())
                    .filter(|e| !e.is_empty())
                    .collect::<Vec<_>>()
            })
            .find(|e| !e.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINTS.iter().map(|s| s.to_string()).collect());
        EtcdConfig {
            endpoints,
            ca_file: first(sources, |s| &s.ca_file),
            cert_file: first(sources, |s| &s.cert_file),
            key_file: first(sources, |s| &s.key_file),
            username: first(sources, |s| &s.username),
            password: first(sources, |s| &s.password),
            group: first(sources, |s| &s.group),
            holder_ttl_secs: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Default for EtcdConfig {
    fn default() -> EtcdConfig {
        EtcdConfig {
            endpoints: DEFAULT_ENDPOINTS.iter().map(|s| s.to_string()).collect(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            username: None,
            password: None,
            group: None,
            holder_ttl_secs: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// What [`EtcdLock::lock`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// The id was not a holder and now holds a slot.
    Acquired,
    /// The id held a slot already (nothing changed but the lease, if any). A caller that did not
    /// take the lock itself is looking at another machine with the same id, or at its own
    /// earlier `lock` whose answer was lost (that call failed as [`EtcdError::Unreachable`]
    /// after etcd had applied it).
    AlreadyHeld,
}

/// Why an etcd lock operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No answer from etcd (connection refused, timeout, no leader, ...).
    #[error("etcd at {endpoints} is unreachable: {cause}")]
    Unreachable {
        /// The endpoints tried, comma-separated.
        endpoints: String,
        /// What happened.
        cause: String,
    },
    /// No free slot (and no expired holder to remove).
    #[error("reboot lock {key} is full: {available} of {max} slots available, held by {}", super::semaphore::holders_text(.holders))]
    Full {
        /// The semaphore key.
        key: String,
        /// `max`.
        max: i64,
        /// `semaphore`.
        available: i64,
        /// The holders.
        holders: Vec<String>,
    },
    /// The id is not a holder.
    #[error("{id} does not hold the reboot lock {key}")]
    NotHeld {
        /// The semaphore key.
        key: String,
        /// The id.
        id: String,
    },
    /// The key holds something that is not a locksmith semaphore.
    #[error("etcd key {key} does not hold a locksmith semaphore: {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Other writers kept winning the compare-and-swap.
    #[error("reboot lock {key} kept changing: gave up after {attempts} attempts")]
    Conflict {
        /// The key.
        key: String,
        /// Attempts made.
        attempts: u32,
    },
    /// etcd answered with an error (authentication, permissions, ...).
    #[error("etcd at {endpoints} refused the request: {cause}")]
    Refused {
        /// The endpoints, comma-separated.
        endpoints: String,
        /// etcd's answer.
        cause: String,
    },
    /// The client configuration cannot be used (TLS files, endpoints, credentials).
    #[error("etcd client configuration: {0}")]
    Config(String),
}

/// A blocking handle on one locksmith semaphore in etcd, with its own connection and runtime
/// thread.
pub struct EtcdLock {
    runtime: tokio::runtime::Runtime,
    client: Client,
    key: String,
    endpoints: String,
    holder_ttl_secs: Option<u64>,
    timeout: Duration,
}

/// What one compare-and-swap round decided.
enum Step<T> {
    /// Nothing to write.
    Done(T),
    /// Write (if the semaphore's `mod_revision` and `compares` still hold): the new semaphore
    /// value if it changed, and more operations in the same transaction.
    Write {
        next: Option<Semaphore>,
        compares: Vec<Compare>,
        ops: Vec<TxnOp>,
        then: T,
    },
}

impl EtcdLock {
    /// Prepares a client for `config` (reading the TLS files). Connections are opened by the
    /// first request, except with a user name (authenticating is a request).
    pub fn connect(config: &EtcdConfig) -> Result<EtcdLock, EtcdError> {
        if config.endpoints.is_empty() {
            return Err(EtcdError::Config("no etcd endpoints".into()));
        }
        let options = connect_options(config)?;
        // One worker thread drives the connection between calls, so a connection that etcd
        // closed is noticed (and replaced) before the next request rather than by it.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("etcd-client")
            .enable_all()
            .build()
            .map_err(|e| EtcdError::Config(format!("starting the etcd client runtime: {e}")))?;
        let endpoints = config.endpoints.join(",");
        // The client's balancer fails requests when one endpoint refuses connections (as
        // locksmithctl's default :4001 does on any etcd 3), so it gets the ones that answer.
        let reachable = answering(&config.endpoints, CONNECT_TIMEOUT);
        let connect = Client::connect(&reachable, Some(options));
        let client =
            match runtime.block_on(async { tokio::time::timeout(config.timeout, connect).await }) {
                Ok(Ok(client)) => client,
                Ok(Err(e)) => return Err(classify(&endpoints, e)),
                Err(_) => return Err(timed_out(&endpoints, config.timeout)),
            };
        Ok(EtcdLock {
            runtime,
            client,
            key: semaphore_key(config.group.as_deref()),
            endpoints,
            holder_ttl_secs: config.holder_ttl_secs,
            timeout: config.timeout,
        })
    }

    /// The semaphore key in use.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Switches to `group`'s semaphore (same connection; the FleetLock server uses this per
    /// request).
    pub fn set_group(&mut self, group: Option<&str>) {
        self.key = semaphore_key(group);
    }

    /// Creates the semaphore with locksmith's initial value if the key is absent. Returns whether
    /// it created it.
    pub fn init(&self) -> Result<bool, EtcdError> {
        let key = self.key.as_str();
        let txn = Txn::new()
            .when([Compare::version(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, Semaphore::new().to_json(), None)]);
        let mut c = self.client.clone();
        Ok(self.call(async move { c.txn(txn).await })?.succeeded())
    }

    /// The current value (created first if absent).
    pub fn get(&self) -> Result<Semaphore, EtcdError> {
        Ok(self.current()?.0)
    }

    /// Takes a slot for `id`. Returns whether `id` held one already (see [`Locked`]). A full
    /// semaphore is [`EtcdError::Full`], after removing expired leased holders if there are any
    /// (module docs). With a holder TTL configured, (re)attaches `id`'s lease.
    pub fn lock(&self, id: &str) -> Result<Locked, EtcdError> {
        let lease = self
            .holder_ttl_secs
            .map(|ttl| self.grant(ttl))
            .transpose()?;
        let result = self.update(|sem| {
            let mut next = sem.clone();
            let mut compares = Vec::new();
            let mut ops = Vec::new();
            let then = match next.lock(id) {
                Ok(()) => Locked::Acquired,
                Err(SemaphoreError::AlreadyHeld { .. }) if lease.is_none() => {
                    return Ok(Step::Done(Locked::AlreadyHeld))
                }
                Err(SemaphoreError::AlreadyHeld { .. }) => {
                    // Only renew the lease, if `id` is still a holder when the write happens
                    // (and repair the value on the way if its fields disagree).
                    ops.extend(self.holder_ops(id, lease));
                    let repaired = sem.repaired();
                    return Ok(Step::Write {
                        next: (repaired != *sem).then_some(repaired),
                        compares,
                        ops,
                        then: Locked::AlreadyHeld,
                    });
                }
                // Full, the only other refusal.
                Err(_) => {
                    let expired = self.expired_holders(sem)?;
                    if expired.is_empty() {
                        return Err(self.full(sem));
                    }
                    for (holder, leased_rev) in &expired {
                        // `holder` is in `sem` (expired_holders checks): unlock cannot fail.
                        let _ = next.unlock(holder);
                        compares.push(Compare::version(
                            self.alive_key(holder),
                            CompareOp::Equal,
                            0,
                        ));
                        compares.push(Compare::mod_revision(
                            self.leased_key(holder),
                            CompareOp::Equal,
                            *leased_rev,
                        ));
                        ops.push(TxnOp::delete(self.leased_key(holder), None));
                    }
                    next.lock(id).map_err(|_| self.full(&next))?;
                    Locked::Acquired
                }
            };
            ops.extend(self.holder_ops(id, lease));
            Ok(Step::Write {
                next: Some(next),
                compares,
                ops,
                then,
            })
        });
        if let (Err(_), Some(lease)) = (&result, lease) {
            self.revoke(lease);
        }
        result
    }

    /// Releases `id`'s slot; [`EtcdError::NotHeld`] if it has none.
    pub fn unlock(&self, id: &str) -> Result<(), EtcdError> {
        if self.unlock_if_held(id)? {
            Ok(())
        } else {
            Err(EtcdError::NotHeld {
                key: self.key.clone(),
                id: id.to_owned(),
            })
        }
    }

    /// Releases `id`'s slot if it has one (FleetLock's steady-state). Returns whether it had.
    pub fn unlock_if_held(&self, id: &str) -> Result<bool, EtcdError> {
        self.update(|sem| {
            let mut next = sem.clone();
            if next.unlock(id).is_err() {
                return Ok(Step::Done(false));
            }
            Ok(Step::Write {
                next: Some(next),
                compares: Vec::new(),
                ops: self.holder_ops(id, None),
                then: true,
            })
        })
    }

    /// Sets `max` (locksmithctl set-max), moving the free slots by the difference. Returns
    /// (old max, new max).
    pub fn set_max(&self, max: u32) -> Result<(i64, i64), EtcdError> {
        let max = i64::from(max);
        self.update(|sem| {
            let mut next = sem.clone();
            let old = next.set_max(max);
            Ok(Step::Write {
                next: Some(next),
                compares: Vec::new(),
                ops: Vec::new(),
                then: (old, max),
            })
        })
    }

    /// Renews `id`'s holder lease (a new lease of the configured TTL); without a TTL only checks
    /// that `id` holds a slot. [`EtcdError::NotHeld`] if it does not.
    pub fn refresh(&self, id: &str) -> Result<(), EtcdError> {
        let lease = self
            .holder_ttl_secs
            .map(|ttl| self.grant(ttl))
            .transpose()?;
        let result = self.update(|sem| {
            if !sem.holds(id) {
                return Err(EtcdError::NotHeld {
                    key: self.key.clone(),
                    id: id.to_owned(),
                });
            }
            Ok(match lease {
                None => Step::Done(()),
                Some(_) => Step::Write {
                    next: None,
                    compares: Vec::new(),
                    ops: self.holder_ops(id, lease),
                    then: (),
                },
            })
        });
        if let (Err(_), Some(lease)) = (&result, lease) {
            self.revoke(lease);
        }
        result
    }

    /// Runs compare-and-swap rounds of `step` until one writes or finishes.
    fn update<T>(
        &self,
        mut step: impl FnMut(&Semaphore) -> Result<Step<T>, EtcdError>,
    ) -> Result<T, EtcdError> {
        let (mut sem, mut rev) = self.current()?;
        for attempt in 0..MAX_ATTEMPTS {
            let (next, compares, ops, then) = match step(&sem)? {
                Step::Done(t) => return Ok(t),
                Step::Write {
                    next,
                    compares,
                    ops,
                    then,
                } => (next, compares, ops, then),
            };
            match self.cas(rev, next.as_ref(), compares, ops)? {
                None => return Ok(then),
                Some(fresh) => (sem, rev) = fresh,
            }
            std::thread::sleep(Duration::from_millis(jitter(
                (2u64 << attempt.min(5)).min(MAX_BACKOFF_MS),
            )));
        }
        Err(EtcdError::Conflict {
            key: self.key.clone(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// The semaphore and its `mod_revision`, creating it if absent.
    fn current(&self) -> Result<(Semaphore, i64), EtcdError> {
        for _ in 0..3 {
            let (mut c, key) = (self.client.clone(), self.key.clone());
            let resp = self.call(async move { c.get(key, None).await })?;
            if let Some(kv) = resp.kvs().first() {
                return self.parse(kv);
            }
            self.init()?;
        }
        Err(EtcdError::Conflict {
            key: self.key.clone(),
            attempts: 3,
        })
    }

    /// One transaction: if the semaphore's `mod_revision` is `rev` and `compares` hold, put
    /// `next` (if any) and run `ops`. `None` when it ran; else the current semaphore.
    fn cas(
        &self,
        rev: i64,
        next: Option<&Semaphore>,
        mut compares: Vec<Compare>,
        mut ops: Vec<TxnOp>,
    ) -> Result<Option<(Semaphore, i64)>, EtcdError> {
        let key = self.key.as_str();
        compares.insert(0, Compare::mod_revision(key, CompareOp::Equal, rev));
        if let Some(next) = next {
            ops.insert(0, TxnOp::put(key, next.to_json(), None));
        }
        let txn = Txn::new()
            .when(compares)
            .and_then(ops)
            .or_else([TxnOp::get(key, None)]);
        let mut c = self.client.clone();
        let resp = self.call(async move { c.txn(txn).await })?;
        if resp.succeeded() {
            return Ok(None);
        }
        let fresh = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => g.kvs().first().cloned(),
            _ => None,
        });
        match fresh {
            Some(kv) => self.parse(&kv).map(Some),
            // Deleted meanwhile: start again from a fresh one.
            None => self.current().map(Some),
        }
    }

    fn parse(&self, kv: &KeyValue) -> Result<(Semaphore, i64), EtcdError> {
        let sem = Semaphore::from_json(kv.value()).map_err(|e| EtcdError::BadValue {
            key: self.key.clone(),
            reason: e.to_string(),
        })?;
        Ok((sem, kv.mod_revision()))
    }

    /// The refusal for `sem`, as its holders say (a stored count may disagree).
    fn full(&self, sem: &Semaphore) -> EtcdError {
        let sem = sem.repaired();
        EtcdError::Full {
            key: self.key.clone(),
            max: sem.max,
            available: sem.semaphore,
            holders: sem.holders().to_vec(),
        }
    }

    fn alive_key(&self, id: &str) -> String {
        format!("{}/alive/{id}", self.key)
    }

    fn leased_key(&self, id: &str) -> String {
        format!("{}/leased/{id}", self.key)
    }

    /// The lease keys of `id` as a holder: both written (with `lease`), or both deleted.
    fn holder_ops(&self, id: &str, lease: Option<i64>) -> Vec<TxnOp> {
        match (lease, self.holder_ttl_secs) {
            (Some(lease), Some(ttl)) => vec![
                TxnOp::put(
                    self.alive_key(id),
                    format!("{lease:x}"),
                    Some(PutOptions::new().with_lease(lease)),
                ),
                TxnOp::put(self.leased_key(id), ttl.to_string(), None),
            ],
            _ => vec![
                TxnOp::delete(self.alive_key(id), None),
                TxnOp::delete(self.leased_key(id), None),
            ],
        }
    }

    /// Holders of `sem` whose lease ran out: their `leased/` record (with its `mod_revision`)
    /// exists, their `alive/` key does not.
    fn expired_holders(&self, sem: &Semaphore) -> Result<Vec<(String, i64)>, EtcdError> {
        let leased_prefix = self.leased_key("");
        let (mut c, p) = (self.client.clone(), leased_prefix.clone());
        let leased =
            self.call(async move { c.get(p, Some(GetOptions::new().with_prefix())).await })?;
        let leased: Vec<(String, i64)> = leased
            .kvs()
            .iter()
            .filter_map(|kv| {
                let id = kv.key().strip_prefix(leased_prefix.as_bytes())?;
                let id = String::from_utf8(id.to_vec()).ok()?;
                sem.holds(&id).then_some((id, kv.mod_revision()))
            })
            .collect();
        if leased.is_empty() {
            return Ok(leased);
        }
        let alive_prefix = self.alive_key("");
        let (mut c, p) = (self.client.clone(), alive_prefix.clone());
        let alive = self.call(async move {
            c.get(p, Some(GetOptions::new().with_prefix().with_keys_only()))
                .await
        })?;
        let alive: Vec<&[u8]> = alive
            .kvs()
            .iter()
            .filter_map(|kv| kv.key().strip_prefix(alive_prefix.as_bytes()))
            .collect();
        Ok(leased
            .into_iter()
            .filter(|(id, _)| !alive.contains(&id.as_bytes()))
            .collect())
    }

    fn grant(&self, ttl: u64) -> Result<i64, EtcdError> {
        let ttl = i64::try_from(ttl).unwrap_or(i64::MAX);
        let mut c = self.client.clone();
        let resp = self.call(async move { c.lease_grant(ttl, None).await })?;
        Ok(resp.id())
    }

    /// Best effort: an unused lease also runs out by itself.
    fn revoke(&self, lease: i64) {
        let mut c = self.client.clone();
        let _ = self.call(async move { c.lease_revoke(lease).await });
    }

    /// Runs one request on the runtime, bounded by the timeout.
    fn call<T>(
        &self,
        fut: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, EtcdError> {
        match self
            .runtime
            .block_on(async { tokio::time::timeout(self.timeout, fut).await })
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(&self.endpoints, e)),
            Err(_) => Err(timed_out(&self.endpoints, self.timeout)),
        }
    }
}

/// The endpoints that accept a TCP connection, in order; all of them when none does (the
/// request then fails with the client's own error).
fn answering(endpoints: &[String], timeout: Duration) -> Vec<String> {
    if endpoints.len() < 2 {
        return endpoints.to_vec();
    }
    let up: Vec<String> = endpoints
        .iter()
        .filter(|e| {
            socket_addrs(e).is_some_and(|addrs| {
                addrs
                    .iter()
                    .any(|a| std::net::TcpStream::connect_timeout(a, timeout).is_ok())
            })
        })
        .cloned()
        .collect();
    if up.is_empty() {
        endpoints.to_vec()
    } else {
        up
    }
}

/// The addresses of an `http://host:port/…` or `https://…` endpoint (ports default to 80/443).
fn socket_addrs(endpoint: &str) -> Option<Vec<std::net::SocketAddr>> {
    use std::net::ToSocketAddrs;
    let (rest, default_port) = if let Some(r) = endpoint.strip_prefix("http://") {
        (r, 80)
    } else if let Some(r) = endpoint.strip_prefix("https://") {
        (r, 443)
    } else {
        (endpoint, 2379)
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let with_port = if authority.starts_with('[') {
        if authority.contains("]:") {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        }
    } else if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    with_port.to_socket_addrs().ok().map(|a| a.collect())
}

fn timed_out(endpoints: &str, timeout: Duration) -> EtcdError {
    EtcdError::Unreachable {
        endpoints: endpoints.to_owned(),
        cause: format!("no answer within {} s", timeout.as_secs_f32()),
    }
}

/// A random number below `bound` (spreads out writers that collided).
fn jitter(bound: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    random % bound.max(1)
}

/// Sorts an `etcd-client` error into ours.
fn classify(endpoints: &str, e: etcd_client::Error) -> EtcdError {
    use etcd_client::Error as E;
    use tonic::Code;
    let unreachable = |cause: String| EtcdError::Unreachable {
        endpoints: endpoints.to_owned(),
        cause,
    };
    match &e {
        E::TransportError(_) | E::IoError(_) => unreachable(chain(&e)),
        E::GRpcStatus(status) => {
            let mut cause = status.message().to_owned();
            let mut source = status.source();
            while let Some(s) = source {
                let text = s.to_string();
                if !cause.contains(&text) {
                    cause = format!("{cause}: {text}");
                }
                source = s.source();
            }
            match status.code() {
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                    unreachable(cause)
                }
                _ => EtcdError::Refused {
                    endpoints: endpoints.to_owned(),
                    cause,
                },
            }
        }
        E::InvalidArgs(_) | E::InvalidUri(_) | E::EndpointError(_) => {
            EtcdError::Config(format!("{endpoints}: {e}"))
        }
        _ => EtcdError::Refused {
            endpoints: endpoints.to_owned(),
            cause: chain(&e),
        },
    }
}

/// An error and its sources, each once.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text = format!("{text}: {t}");
        }
        source = s.source();
    }
    text
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path)
        .map_err(|e| EtcdError::Config(format!("reading the etcd {what} {}: {e}", path.display())))
}

/// Timeouts, credentials and TLS from `config`.
fn connect_options(config: &EtcdConfig) -> Result<ConnectOptions, EtcdError> {
    let mut options = ConnectOptions::new()
        .with_timeout(config.timeout)
        .with_connect_timeout(CONNECT_TIMEOUT.min(config.timeout));
    match (&config.username, &config.password) {
        (Some(user), password) => {
            options = options.with_user(user, password.clone().unwrap_or_default())
        }
        (None, Some(_)) => {
            return Err(EtcdError::Config(
                "an etcd password needs a user name".into(),
            ))
        }
        (None, None) => {}
    }
    let https = config.endpoints.iter().any(|e| e.starts_with("https://"));
    let tls_files =
        config.ca_file.is_some() || config.cert_file.is_some() || config.key_file.is_some();
    if !(https || tls_files) {
        return Ok(options);
    }
    let ca = config.ca_file.as_deref().ok_or_else(|| {
        EtcdError::Config(
            "TLS to etcd needs the CA file (--etcd-cafile, LOCKSMITHD_ETCD_CAFILE)".into(),
        )
    })?;
    let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(read(ca, "CA file")?));
    match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(
                read(cert, "certificate file")?,
                read(key, "key file")?,
            ))
        }
        (None, None) => {}
        _ => {
            return Err(EtcdError::Config(
                "the etcd certificate and key files go together".into(),
            ))
        }
    }
    Ok(options.with_tls(tls))
}

#[cfg(test)]
mod endpoint_tests {
    use super::*;

    #[test]
    fn socket_addresses_of_endpoints() {
        let one = |e: &str| socket_addrs(e).map(|a| a[0].to_string());
        assert_eq!(
            one("http://127.0.0.1:2379").as_deref(),
            Some("127.0.0.1:2379")
        );
        assert_eq!(one("http://127.0.0.1").as_deref(), Some("127.0.0.1:80"));
        assert_eq!(one("https://127.0.0.1/").as_deref(), Some("127.0.0.1:443"));
        assert_eq!(
            one("http://u:p@127.0.0.1:4001/x").as_deref(),
            Some("127.0.0.1:4001")
        );
        assert_eq!(one("http://[::1]:2379").as_deref(), Some("[::1]:2379"));
        assert_eq!(one("http://[::1]").as_deref(), Some("[::1]:80"));
        assert_eq!(one("http://bad host:1"), None);
    }

    #[test]
    fn answering_endpoints_come_first() {
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let up = format!("http://{}", open.local_addr().unwrap());
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let down = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let t = Duration::from_secs(1);
        let want = [up.clone()];
        assert_eq!(answering(&[down.clone(), up], t), want);
        assert_eq!(
            answering(&[down.clone(), down.clone()], t),
            [down.clone(), down.clone()]
        );
        // One endpoint is left to the client, unprobed.
        assert_eq!(answering(std::slice::from_ref(&down), t), [down]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_locksmiths() {
        assert_eq!(
            semaphore_key(None),
            "coreos.com/updateengine/rebootlock/semaphore"
        );
        assert_eq!(semaphore_key(Some("")), DEFAULT_KEY);
        assert_eq!(semaphore_key(Some("default")), DEFAULT_KEY);
        assert_eq!(
            semaphore_key(Some("lb")),
            "coreos.com/updateengine/rebootlock/groups/lb/semaphore"
        );
        // Go: url.QueryEscape("a b/c&d~e.f-g_h") == "a+b%2Fc%26d~e.f-g_h"
        assert_eq!(
            semaphore_key(Some("a b/c&d~e.f-g_h")),
            "coreos.com/updateengine/rebootlock/groups/a+b%2Fc%26d~e.f-g_h/semaphore"
        );
        assert_eq!(query_escape("é"), "%C3%A9");
    }

    #[test]
    fn bad_configurations_are_named() {
        let base = EtcdConfig::default();
        let err = |c: EtcdConfig| match EtcdLock::connect(&c) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{c:?} connected"),
        };
        let e = err(EtcdConfig {
            endpoints: vec![],
            ..base.clone()
        });
        assert!(e.contains("no etcd endpoints"), "{e}");
        let e = err(EtcdConfig {
            endpoints: vec!["https://127.0.0.1:1".into()],
            ..base.clone()
        });
        assert!(e.contains("needs the CA file"), "{e}");
        let e = err(EtcdConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..base.clone()
        });
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let e = err(EtcdConfig {
            password: Some("x".into()),
            ..base.clone()
        });
        assert!(e.contains("needs a user name"), "{e}");
    }

    #[test]
    fn unreachable_etcd_is_a_quick_clear_error() {
        // A port nobody listens on: refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let lock = EtcdLock::connect(&EtcdConfig {
            endpoints: vec![format!("http://127.0.0.1:{port}")],
            timeout: Duration::from_secs(2),
            ..EtcdConfig::default()
        })
        .unwrap();
        let e = lock.lock("m1").unwrap_err();
        assert!(matches!(e, EtcdError::Unreachable { .. }), "{e:?}");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    }
}
