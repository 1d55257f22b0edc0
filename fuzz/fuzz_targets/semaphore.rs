//! locksmith's reboot semaphore as stored in etcd (`lock::semaphore`): `from_json` never panics;
//! what it reads writes (`to_json`, Go's escaping) as JSON any reader accepts and that reads
//! back to the same semaphore; and lock, unlock and set-max keep it consistent: a lock that
//! succeeds makes its id a holder and takes one slot, an unlock gives it back, a failed
//! operation changes nothing.
//!
//! Input: `<semaphore JSON>\0<machine id>`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use update_engine::lock::{Semaphore, SemaphoreError};

fuzz_target!(|data: &[u8]| {
    let parts = fuzz::split_nul(data, 2);
    let Ok(sem) = Semaphore::from_json(parts[0]) else {
        return;
    };
    let id = String::from_utf8_lossy(parts[1]).into_owned();
    round_trip(&sem);

    let mut locked = sem.clone();
    match locked.lock(&id) {
        Ok(()) => {
            assert!(!sem.holds(&id) && !sem.is_full());
            assert!(locked.holds(&id));
            assert_eq!(locked.semaphore, sem.semaphore - 1);
            assert_eq!(locked.holders().len(), sem.holders().len() + 1);
            round_trip(&locked);
            let mut unlocked = locked.clone();
            unlocked.unlock(&id).expect("the holder unlocks");
            assert!(!unlocked.holds(&id));
            assert_eq!(unlocked.semaphore, sem.semaphore);
        }
        Err(SemaphoreError::AlreadyHeld { .. }) => {
            assert!(sem.holds(&id));
            assert_eq!(locked, sem);
        }
        Err(SemaphoreError::Full { .. }) => {
            assert!(sem.is_full());
            assert_eq!(locked, sem);
        }
        Err(e) => panic!("lock failed with {e:?}"),
    }

    let mut unlocked = sem.clone();
    match unlocked.unlock(&id) {
        Ok(()) => assert_eq!(unlocked.holders().len() + 1, sem.holders().len()),
        Err(_) => assert_eq!(unlocked, sem),
    }

    let mut resized = sem.clone();
    let max = i64::from(data.len() as u8) - 2;
    assert_eq!(resized.set_max(max), sem.max);
    assert_eq!(resized.max, max);
    round_trip(&resized);
});

fn round_trip(sem: &Semaphore) {
    let json = sem.to_json();
    serde_json::from_str::<serde_json::Value>(&json)
        .unwrap_or_else(|e| panic!("{json} is not JSON: {e}"));
    let back = Semaphore::from_json(json.as_bytes())
        .unwrap_or_else(|e| panic!("{json} does not read back: {e}"));
    assert_eq!(&back, sem, "{json}");
}
