//! Fuzz target `websocket`: see `roomd::fuzzing::websocket`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomd::fuzzing::websocket(data));
