//! Bytes on stdin → JSON → Envelope → Passthrough → addresses, router ids and the ADD result, with the
//! invariants of `openpe_fuzz::check_config`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    openpe_fuzz::check_config(data);
});
