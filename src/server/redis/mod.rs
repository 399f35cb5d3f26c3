//! The Redis client of cluster mode (`--redis`): two nonblocking
//! connections on the reactor's mio `Poll`, one for commands (replies
//! matched in order), one for pub/sub, reconnected with backoff.
//!
//! [`Machine`] is the client without sockets (bytes and time in, bytes and
//! [`Event`]s out); [`RedisClient`] drives it with mio. The reactor:
//!
//! 1. creates it with [`RedisClient::new`] and two tokens of its own;
//! 2. passes each readiness event for those tokens to
//!    [`RedisClient::handle_event`];
//! 3. sleeps at most until [`RedisClient::next_deadline`] and then calls
//!    [`RedisClient::handle_timeout`];
//! 4. after each of those, drains [`RedisClient::poll_event`];
//! 5. submits commands with [`RedisClient::submit`] (or
//!    [`RedisClient::submit_script`]) and subscribes with
//!    [`RedisClient::subscribe`]; each command gets exactly one
//!    [`Event::Reply`] with its id.

mod backoff;
mod driver;
mod link;
mod machine;
pub mod scripts;
mod url;

pub use backoff::{FIRST_MS as BACKOFF_FIRST_MS, MAX_MS as BACKOFF_MAX_MS};
pub use driver::RedisClient;
pub use machine::{Machine, PROBE_INTERVAL_MS, Which};
pub use url::{DEFAULT_PORT, RedisUrl};

use crate::protocol::resp::Reply;
use std::time::Duration;

/// Commands waiting for Redis (queued or unanswered) by default.
pub const DEFAULT_MAX_PENDING: usize = 10_000;

/// The client's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// Where Redis is (`--redis`).
    pub url: RedisUrl,
    /// A connection that waits this long for an answer is dead
    /// (`--node-timeout`).
    pub node_timeout: Duration,
    /// Commands waiting to be sent or answered, at most; past it a command
    /// fails at once ([`DEFAULT_MAX_PENDING`]).
    pub max_pending: usize,
    /// Scripts loaded (`SCRIPT LOAD`) as each command connection opens,
    /// before any command: their `EVALSHA`s then run in the order sent
    /// (the `NOSCRIPT` retry, for a cache flushed while connected, goes
    /// to the end of the pipeline).
    pub scripts: Vec<Script>,
}

impl RedisConfig {
    /// The settings of `url` with the node timeout and the default cap.
    pub fn new(url: RedisUrl, node_timeout: Duration) -> RedisConfig {
        RedisConfig {
            url,
            node_timeout,
            max_pending: DEFAULT_MAX_PENDING,
            scripts: Vec::new(),
        }
    }
}

/// Why a command got no reply from Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Too many commands were waiting: refused without being sent.
    QueueFull,
    /// Its connection was lost before the reply came: it may or may not
    /// have run.
    Lost,
}

/// What the client tells its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Both connections are ready (after start, or after being down).
    Up,
    /// A connection was lost or stopped answering.
    Down,
    /// The reply to command `id` (an error reply is `Ok(Reply::Error)`).
    Reply {
        /// The id it was submitted with.
        id: u64,
        /// Redis's reply, or why there is none.
        reply: Result<Reply, Failure>,
    },
    /// A subscription is confirmed (after each reconnection too).
    Subscribed {
        /// The channel, or the pattern.
        channel: Vec<u8>,
        /// Whether it is a pattern subscription.
        pattern: bool,
    },
    /// A published message, in publish order.
    Message {
        /// The pattern it matched, for a pattern subscription.
        pattern: Option<Vec<u8>>,
        /// The channel it was published to.
        channel: Vec<u8>,
        /// The message.
        payload: Vec<u8>,
    },
}

/// A Lua script, known to Redis by the SHA1 of its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    body: String,
    sha1: String,
}

impl Script {
    /// The script `body`, with its SHA1 computed once.
    pub fn new(body: impl Into<String>) -> Script {
        let body = body.into();
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            body.as_bytes(),
        );
        let sha1 = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Script { body, sha1 }
    }

    /// The body, as `EVAL` takes it.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The SHA1 in hex, as `EVALSHA` takes it.
    pub fn sha1(&self) -> &str {
        &self.sha1
    }
}

#[cfg(test)]
mod tests;
