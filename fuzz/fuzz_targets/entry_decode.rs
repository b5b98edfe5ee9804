//! The entry decoder on arbitrary bytes: never panics; whatever it accepts
//! re-encodes to bytes that decode to the same entry with the same id, and
//! its signature check gives a verdict (no panic) either way.
#![no_main]

use lattice_kernel::{Hlc, Limits, SignedEntry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Any HLC is in range: the drift rule has its own tests.
    let clock = Hlc::new(std::time::Duration::from_secs(100 * 365 * 86_400));
    let Ok(e) = SignedEntry::decode(data, &Limits::default(), &clock) else {
        return;
    };
    let wire = e.to_wire();
    let again = SignedEntry::decode(&wire, &Limits::default(), &clock)
        .expect("an accepted entry re-encodes to an accepted entry");
    assert_eq!(again.id, e.id, "the id is a function of the body");
    assert_eq!(
        again.to_wire(),
        wire,
        "encoding is canonical after one pass"
    );
    let _ = e.verify();
});
