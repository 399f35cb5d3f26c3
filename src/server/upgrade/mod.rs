//! Live upgrade (`SIGUSR2`): the running process hands its listeners,
//! connections and engine to a new binary, its child, without closing a
//! plaintext connection.
//!
//! Each file has one job: [`handover`] is the document (what is handed
//! over besides descriptors), [`transport`] moves it and the descriptors
//! over a Unix socket, [`presend`] sends the connections' sockets ahead
//! while the old process still serves, [`child`] asks the new binary
//! which versions it reads, starts it and waits for its word. The
//! reactor's side (what it puts in the document and how it rebuilds from
//! one) is in `crate::server::reactor::{upgrade, early, resume}`.

pub mod child;
pub mod handover;
pub mod presend;
pub mod transport;

pub use handover::{HANDOVER_VERSION, HANDOVER_VERSIONS, Handover};
