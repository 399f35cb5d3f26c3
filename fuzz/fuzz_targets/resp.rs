//! Fuzz target `resp`: see `roomd::fuzzing::resp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomd::fuzzing::resp(data));
