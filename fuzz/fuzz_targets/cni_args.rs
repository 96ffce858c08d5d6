//! CNI_ARGS (and CNI_COMMAND) parsing on arbitrary strings, with the invariants of
//! `openpe_fuzz::check_cni_args`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    openpe_fuzz::check_cni_args(data);
});
