//! Tests that never open a socket: the engine driven through a small
//! harness (one module per protocol), the model-based property test, the
//! fuzz seeds, and `roomd replay` on recorded journals.

mod common;

mod chat;
mod cluster;
mod fuzz_seeds;
mod general;
mod identity;
mod model;
mod presence;
mod replay_cli;
mod saved;
mod scratch;
mod signal;
mod stream;
mod timers;
mod token;
