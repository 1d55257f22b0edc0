//! Canonical JSON (`channels::canonical`): reading never panics; bytes it accepts are exactly
//! the canonical form of what they hold; and the canonical form of any JSON value without
//! floats reads back to that value.

#![no_main]

use channels::canonical;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = canonical::from_slice::<Value>(data) {
        let written = canonical::to_vec(&value).expect("a canonical value writes");
        assert_eq!(
            written, data,
            "accepted bytes that are not their canonical form"
        );
    }
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(written) = canonical::to_vec(&value) else {
        return; // a float: refused on write
    };
    let back: Value = canonical::from_slice(&written)
        .unwrap_or_else(|e| panic!("the canonical form does not read back: {e}"));
    assert_eq!(back, value);
    assert_eq!(canonical::to_vec(&back).as_ref(), Ok(&written));
});
