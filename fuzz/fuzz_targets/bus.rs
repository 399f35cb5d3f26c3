//! Fuzz target `bus`: see `roomd::fuzzing::bus`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomd::fuzzing::bus(data));
