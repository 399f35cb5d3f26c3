//! Fuzz target `journal`: see `roomd::fuzzing::journal`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomd::fuzzing::journal(data));
