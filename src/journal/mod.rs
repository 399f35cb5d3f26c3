//! The input journal: a JSON Lines record of every engine input, enough to
//! reproduce a run bit for bit.
//!
//! # Format (version [`FORMAT_VERSION`])
//!
//! Line 1 is the header, then one line per engine input:
//!
//! ```text
//! {"roomd_journal":1,"seed":42,"config":{"heartbeat_interval_ms":30000,...}}
//! {"time":1700000000000,"input":{"kind":"open","conn":1,...},"digest":"8f3a..."}
//! {"time":1700000000005,"input":{"kind":"text","conn":1,"text":"..."},"digest":"..."}
//! ```
//!
//! `time` is the `now_ms` the engine was given, `input` the
//! [`crate::engine::Input`] (serde's tagged form) and `digest` the
//! [`digest::Digest`] of the outputs the engine queued for that input.
//! Journals written before the timers became data still read: their
//! `{"kind":"tick"}` is a `timeout`, and the `origin` of their `open`
//! records is ignored. Their digests hold only where the new timer rules
//! (deadlines rounded up to the timer granule) give the same pings.
//! With signed identities on, the header's config has `auth`, `open`
//! records carry the verified `identity` and `auth` records the verified
//! result (`{"Ok":IDENTITY}` or `{"Err":"expired"}`), never a token, so
//! replays need no keys; a journal recorded without auth has none of
//! these, byte for byte as before.
//! Replaying the inputs on a fresh engine built from the header's seed and
//! config must give the same digest on every line.
//!
//! This module does no IO of its own: the writer takes any
//! [`std::io::Write`], the reader any [`std::io::BufRead`].

pub mod action;
pub mod digest;
pub mod format;
pub mod reader;
pub mod writer;

pub use action::Action;
pub use digest::Digest;
pub use format::{FORMAT_VERSION, Header, Record};
pub use reader::{Entry, JournalError, JournalReader};
pub use writer::JournalWriter;
