//! Fuzz target `http_request`: see `roomd::fuzzing::http_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomd::fuzzing::http_request(data));
