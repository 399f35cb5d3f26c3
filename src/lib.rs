//! roomd: a real-time WebSocket server for rooms, presence, WebRTC signaling
//! and chat, speaking the wire protocols of five existing Node.js servers.
//!
//! The crate is split in three layers, imported one way:
//!
//! - [`protocol`]: pure parsing and encoding (each protocol's messages,
//!   timestamps).
//! - [`engine`]: the pure, IO-free state machine. It never reads a clock,
//!   touches a socket or a file, or uses a global RNG.
//! - [`server`]: all IO (the mio reactor, connections, HTTP answers, the clock,
//!   systemd). [`server::run`] is what the `roomd` binary does.
//!
//! # The run loop
//!
//! 1. Build an [`engine::Engine`] with an [`engine::EngineConfig`] and a seed.
//! 2. For every event on a connection (opened, text, binary, pong, closed),
//!    call [`engine::Engine::handle`] with the current wall-clock time in
//!    milliseconds and the [`engine::Input`]. With signed identities on
//!    ([`engine::EngineConfig::auth`]), verify tokens first: the opening
//!    one goes in [`engine::Input::Open`]'s `identity`, an in-band `auth`
//!    message becomes [`engine::Input::Auth`] instead of text.
//! 3. After each call, drain [`engine::Engine::drain_outputs`] and carry out
//!    every [`engine::Output`] (send a text frame, ping, close, terminate).
//! 4. Ask [`engine::Engine::poll_timeout`] when the engine next has
//!    something due (`None`: nothing, wait for IO alone) and wait for IO at
//!    most until then.
//! 5. When that time has come, call [`engine::Engine::handle`] with
//!    [`engine::Input::Timeout`] (heartbeats, presence stats, token
//!    expiries) and carry
//!    out its outputs as in step 3. Then back to step 2.
//!
//! Same seed and same inputs give the same outputs, byte for byte.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
pub mod engine;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod journal;
pub mod protocol;
pub mod replay;
pub mod server;
