//! Fuzz target `protocol_messages`: see `roomd::fuzzing::protocol_messages`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomd::fuzzing::protocol_messages(data));
