//! locksmith's reboot semaphore as stored in etcd (`lock::semaphore`): `from_json` never panics;
//! what it reads writes (`to_json`, Go's escaping) as JSON any reader accepts and that reads
//! back to the same semaphore; any value's repair is consistent and a fixed point; and lock,
//! unlock and set-max, which start from the repair, leave a consistent value: a lock that
//! succeeds makes its id a holder and takes one slot (never more holders than max), an unlock
//! gives it back, a failed operation changes nothing.
//!
//! Input: `<semaphore JSON>\0<machine id>`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use update_engine::lock::semaphore::Problem;
use update_engine::lock::{Semaphore, SemaphoreError};

/// A repaired value's problems: none, but an empty holder id, which a repair keeps (it may be a
/// machine whose id is empty) and only reports.
fn consistent(sem: &Semaphore) -> bool {
    sem.problems().iter().all(|p| *p == Problem::EmptyHolder)
}

fuzz_target!(|data: &[u8]| {
    let parts = fuzz::split_nul(data, 2);
    let Ok(sem) = Semaphore::from_json(parts[0]) else {
        return;
    };
    let id = String::from_utf8_lossy(parts[1]).into_owned();
    round_trip(&sem);
    // Whatever was stored (hand edits, old clients), its repair is consistent, a fixed point,
    // and what every write starts from.
    let fixed = sem.repaired();
    assert!(consistent(&fixed), "{} repairs to {}", sem.to_json(), fixed.to_json());
    assert_eq!(fixed.repaired(), fixed);
    round_trip(&fixed);

    let mut locked = sem.clone();
    match locked.lock(&id) {
        Ok(()) => {
            assert!(!fixed.holds(&id) && !fixed.is_full());
            assert!(locked.holds(&id));
            assert_eq!(locked.semaphore, fixed.semaphore - 1);
            assert_eq!(locked.holders().len(), fixed.holders().len() + 1);
            // Never more holders than max.
            assert!(locked.holders().len() as i64 <= locked.max.max(0));
            assert!(consistent(&locked));
            round_trip(&locked);
            let mut unlocked = locked.clone();
            unlocked.unlock(&id).expect("the holder unlocks");
            assert!(!unlocked.holds(&id));
            assert_eq!(unlocked.semaphore, fixed.semaphore);
        }
        Err(SemaphoreError::AlreadyHeld { .. }) => {
            assert!(fixed.holds(&id));
            assert_eq!(locked, sem);
        }
        Err(SemaphoreError::Full { .. }) => {
            assert!(fixed.is_full());
            assert_eq!(locked, sem);
        }
        Err(e) => panic!("lock failed with {e:?}"),
    }

    let mut unlocked = sem.clone();
    match unlocked.unlock(&id) {
        Ok(()) => {
            assert!(!unlocked.holds(&id));
            assert!(unlocked.holders().len() < sem.holders().len());
            assert!(consistent(&unlocked));
        }
        Err(_) => assert_eq!(unlocked, sem),
    }

    let mut resized = sem.clone();
    let max = i64::from(data.len() as u8) - 2;
    assert_eq!(resized.set_max(max), sem.max);
    assert!(consistent(&resized));
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
