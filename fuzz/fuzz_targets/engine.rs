//! Fuzz target `engine`: see `roomd::fuzzing::engine`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomd::fuzzing::engine(data));
