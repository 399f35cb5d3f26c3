//! Pure parsing and encoding of the five wire protocols.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub mod auth;
pub mod chat;
pub mod close;
pub mod envelope;
pub mod frame;
pub mod http;
pub mod json;
pub mod presence;
pub mod resp;
pub mod scratch;
pub mod signal;
pub mod stream;
pub mod timestamp;
pub mod token;
pub mod websocket;

/// Rendering of an outbound message as JSON text.
pub trait Encode {
    /// The JSON text of this message.
    fn encode(&self) -> String;
}

impl<T: Serialize + ?Sized> Encode for T {
    /// Our message types hold only strings, numbers, booleans and
    /// already-valid raw JSON, so serialising cannot fail.
    ///
    /// The JSON is written into a buffer reused across calls and then
    /// copied once into an exactly sized `String`: `serde_json::to_string`
    /// starts at 128 bytes and reallocates (copying) as a `room-joined`
    /// listing ten participants grows, which was a tenth of the
    /// instructions of a connection's handshake and join.
    fn encode(&self) -> String {
        ENCODE_BUFFER.with_borrow_mut(|buf| {
            buf.clear();
            let written = serde_json::to_writer(&mut *buf, self);
            let text = written
                .map_err(|e| e.to_string())
                .and_then(|()| std::str::from_utf8(buf).map_err(|e| e.to_string()));
            let text = text.unwrap_or_else(|e| {
                log::error!("cannot serialise an outbound message: {e}");
                "{}"
            });
            let text = String::from(text);
            if buf.capacity() > ENCODE_BUFFER_KEPT {
                *buf = Vec::new();
            }
            text
        })
    }
}

/// Largest encode buffer kept between calls (a larger one, from an
/// unusually large message, is released).
const ENCODE_BUFFER_KEPT: usize = 64 * 1024;

std::thread_local! {
    /// Where [`Encode::encode`] writes before copying out the result.
    static ENCODE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The error text sent for a message refused by the rate limiter, and the
/// reason of the close after too long over the limit.
pub const RATE_LIMIT_EXCEEDED: &str = "rate limit exceeded";

/// The error a message gets in cluster mode when what it asks for needs
/// Redis and Redis cannot be reached.
pub const UNAVAILABLE: &str = "service unavailable, try again later";

/// `{"type":"error","message":M}`: the error message of `scratch`,
/// `signal` and `stream`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "error")]
pub struct ErrorMessage<'a> {
    /// What went wrong.
    pub message: &'a str,
}

/// One of the wire protocols roomd speaks (see `PROTOCOLS.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Collaborative session sync (scratch-sync-server).
    Scratch,
    /// Two-peer WebRTC signaling (signaling-server).
    Signal,
    /// Online status (online-status-server).
    Presence,
    /// Broadcast chat (chat-service).
    Chat,
    /// Multi-user streaming rooms (streaming-room-server).
    Stream,
}

/// The default routes of PROTOCOLS.md: each path and the protocol it speaks.
pub const DEFAULT_ROUTES: [(&str, Protocol); 6] = [
    ("/scratch", Protocol::Scratch),
    ("/signal", Protocol::Signal),
    ("/presence", Protocol::Presence),
    ("/ws-online-status", Protocol::Presence),
    ("/chat", Protocol::Chat),
    ("/stream", Protocol::Stream),
];

/// Why a connection may not open with its query string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryError {
    /// Presence's `userId` is missing or not valid.
    UserId(presence::UserIdError),
    /// The `userId` is not the token's subject.
    NotSubject,
}

impl Protocol {
    /// Every protocol, in a fixed order (the order of [`Protocol::index`]).
    pub const ALL: [Protocol; 5] = [
        Protocol::Scratch,
        Protocol::Signal,
        Protocol::Presence,
        Protocol::Chat,
        Protocol::Stream,
    ];

    /// The protocol's name as used in routes, `/health` and `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Scratch => "scratch",
            Protocol::Signal => "signal",
            Protocol::Presence => "presence",
            Protocol::Chat => "chat",
            Protocol::Stream => "stream",
        }
    }

    /// Whether a connection may open with this query string, as the user
    /// `sub` names (signed identities) if any: presence needs a `userId`
    /// unless the token names the user, and one given must be the token's;
    /// the others take any query.
    pub fn check_query(self, query: &str, sub: Option<&str>) -> Result<(), QueryError> {
        if self != Protocol::Presence {
            return Ok(());
        }
        match (presence::user_id_from_query(query), sub) {
            (Ok(user), Some(sub)) if user != sub => Err(QueryError::NotSubject),
            (Err(why), None) => Err(QueryError::UserId(why)),
            _ => Ok(()),
        }
    }

    /// A dense index in `0..5`, for per-protocol arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown protocol name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProtocol(pub String);

impl fmt::Display for UnknownProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown protocol {:?} (expected scratch, signal, presence, chat or stream)",
            self.0
        )
    }
}

impl std::error::Error for UnknownProtocol {}

impl FromStr for Protocol {
    type Err = UnknownProtocol;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProtocol(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_shape() {
        assert_eq!(
            ErrorMessage { message: "x \"y\"" }.encode(),
            r#"{"type":"error","message":"x \"y\""}"#
        );
    }

    #[test]
    fn names_round_trip() {
        for p in Protocol::ALL {
            assert_eq!(p.name().parse::<Protocol>(), Ok(p));
            assert_eq!(Protocol::ALL[p.index()], p);
        }
        assert!("Chat".parse::<Protocol>().is_err());
    }
}
