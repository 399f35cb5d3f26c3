//! The hand-over document: everything a new process needs besides the
//! descriptors to go on exactly where the old one stopped. Most
//! connections' descriptors were sent ahead ([`super::presend`]); the
//! rest travel beside the document ([`super::transport`]): the listeners'
//! first, in [`Handover::listeners`]' order, then those of the
//! connections not sent ahead, in [`Handover::conns`]' order.

use crate::protocol::websocket::State as CodecState;
use crate::server::connection::Life;
use crate::server::metrics::ServerCounters;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The version of the document this build writes.
pub const HANDOVER_VERSION: u32 = 2;

/// The versions of the document this build reads (printed by
/// `roomd handover-versions`).
pub const HANDOVER_VERSIONS: [u32; 1] = [HANDOVER_VERSION];

/// Everything handed over besides descriptors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Handover {
    /// [`HANDOVER_VERSION`] of the writer.
    pub version: u32,
    /// The reactor clock's `now_ms` when the old process stopped: the new
    /// clock goes on from there, so the engine's deadlines hold.
    pub now_ms: u64,
    /// Wall-clock milliseconds when the old process stopped reading (the
    /// new one measures the pause from it).
    pub stopped_wall_ms: u64,
    /// Each listener: whether it is TLS.
    pub listeners: Vec<bool>,
    /// Each connection handed over.
    pub conns: Vec<ConnRecord>,
    /// The next engine connection id.
    pub next_id: u64,
    /// The next connection serial.
    pub next_serial: u64,
    /// The journal's length once flushed, if journaling: the new process
    /// appends to it.
    pub journal_len: Option<u64>,
    /// The counters, carried on (upgrades done among them).
    pub counters: ServerCounters,
    /// Cluster mode: the engine's bus commands still waiting for a reply
    /// (the new process's Redis connections are new: they fail, as on a
    /// lost connection).
    #[serde(default)]
    pub bus_in_flight: Vec<u64>,
}

/// One connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnRecord {
    /// Its slab key, which the new process keeps (its token).
    pub key: usize,
    /// Its serial in the old process.
    pub serial: u64,
    /// Its descriptor was sent ahead ([`super::presend`]) under this key
    /// and serial; otherwise it travels beside the document.
    pub sent_ahead: bool,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Where it is in its life.
    pub phase: Phase,
}

/// Where a handed-over connection is in its life.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Phase {
    /// Reading its request head: what came so far, and its deadline.
    Request {
        /// The request bytes so far.
        #[serde(with = "bytes")]
        buf: Vec<u8>,
        /// When it is given up on.
        deadline_ms: u64,
    },
    /// An HTTP answer still being written.
    Answered {
        /// The answer's unsent bytes.
        #[serde(with = "bytes")]
        out: Vec<u8>,
        /// When it is given up on.
        deadline_ms: u64,
    },
    /// A WebSocket.
    WebSocket {
        /// Its engine id.
        id: u64,
        /// Its life.
        life: Life,
        /// Its codec's state.
        codec: CodecState,
        /// The bytes received of an incomplete message.
        #[serde(with = "bytes")]
        partial: Vec<u8>,
        /// The bytes queued for the client and not yet written.
        #[serde(with = "bytes")]
        unsent: Vec<u8>,
    },
}

impl Handover {
    /// The document as bytes, with the engine's state
    /// ([`crate::engine::Engine::save`]): the length of the rest as JSON
    /// (8 bytes, little-endian), the rest as JSON, then the engine's
    /// state as it is (escaping megabytes of JSON into a string would
    /// lengthen the pause).
    pub fn encode(&self, engine: &str) -> Vec<u8> {
        // Plain data; serialising it cannot fail.
        let rest = serde_json::to_vec(self).unwrap_or_default();
        let mut bytes = Vec::with_capacity(8 + rest.len() + engine.len());
        bytes.extend_from_slice(&(rest.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&rest);
        bytes.extend_from_slice(engine.as_bytes());
        bytes
    }

    /// [`Self::encode`]'s bytes apart: the rest (for [`Self::decode`])
    /// and the engine's state (so that the two can be read at once).
    pub fn split(bytes: &[u8]) -> Result<(&[u8], &str), String> {
        let (len, bytes) = bytes.split_at_checked(8).ok_or("a document too short")?;
        let len = u64::from_le_bytes(len.try_into().map_err(|_| "no length")?);
        let len = usize::try_from(len).map_err(|e| e.to_string())?;
        let (rest, engine) = bytes.split_at_checked(len).ok_or("a document cut short")?;
        let engine = std::str::from_utf8(engine).map_err(|e| e.to_string())?;
        Ok((rest, engine))
    }

    /// The document from the rest [`Self::split`] gave; an error for
    /// anything else or for a version this build does not read.
    pub fn decode(rest: &[u8]) -> Result<Handover, String> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let not_read = |version| format!("hand-over version {version} is not read");
        // Parsed once (a second pass for the version alone cost a few ms
        // of the pause); the version is looked at alone only to explain a
        // document that does not parse.
        let handover: Handover = match serde_json::from_slice(rest) {
            Ok(handover) => handover,
            Err(e) => {
                return Err(match serde_json::from_slice::<Versioned>(rest) {
                    Ok(v) if !HANDOVER_VERSIONS.contains(&v.version) => not_read(v.version),
                    _ => e.to_string(),
                });
            }
        };
        if !HANDOVER_VERSIONS.contains(&handover.version) {
            return Err(not_read(handover.version));
        }
        Ok(handover)
    }

    /// How many descriptors travel with it (those not sent ahead).
    pub fn descriptors(&self) -> usize {
        let beside = self.conns.iter().filter(|c| !c.sent_ahead).count();
        self.listeners.len() + beside
    }
}

/// Bytes as base64 text.
mod bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// `bytes` as base64.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    /// Bytes from base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Handover {
        Handover {
            version: HANDOVER_VERSION,
            now_ms: 7,
            stopped_wall_ms: 8,
            listeners: vec![false, true],
            conns: vec![
                ConnRecord {
                    key: 0,
                    serial: 1,
                    sent_ahead: false,
                    peer: "127.0.0.1:9".parse().unwrap(),
                    phase: Phase::Request {
                        buf: b"GET / HT".to_vec(),
                        deadline_ms: 10,
                    },
                },
                ConnRecord {
                    key: 4,
                    serial: 3,
                    sent_ahead: true,
                    peer: "[::1]:9".parse().unwrap(),
                    phase: Phase::WebSocket {
                        id: 3,
                        life: Life::Open,
                        codec: CodecState::Open,
                        partial: vec![0x81, 0x85, 0, 255],
                        unsent: vec![],
                    },
                },
            ],
            next_id: 4,
            next_serial: 5,
            journal_len: Some(100),
            counters: ServerCounters {
                upgrades_done: 2,
                ..ServerCounters::default()
            },
            bus_in_flight: vec![11, 12],
        }
    }

    #[test]
    fn a_document_reads_back_and_other_versions_are_refused() {
        let doc = sample();
        assert_eq!(doc.descriptors(), 3, "one sent ahead");
        let engine = r#"{"engine":"state \u00e9"}"#;
        let bytes = doc.encode(engine);
        let (rest, got) = Handover::split(&bytes).unwrap();
        assert_eq!((Handover::decode(rest), got), (Ok(doc.clone()), engine));
        let other = Handover { version: 99, ..doc };
        let bytes = other.encode(engine);
        let e = Handover::decode(Handover::split(&bytes).unwrap().0).unwrap_err();
        assert!(e.contains("99"), "{e}");
        // A later version whose document this build cannot parse: the
        // version is named, not the parse error.
        let e = Handover::decode(br#"{"version":7,"what":"new"}"#).unwrap_err();
        assert_eq!(e, "hand-over version 7 is not read");
        assert!(Handover::decode(b"not json").is_err());
        assert!(Handover::split(&[]).is_err());
        let mut cut = sample().encode(engine);
        cut.truncate(20);
        assert!(Handover::split(&cut).is_err());
        let mut not_utf8 = sample().encode("");
        not_utf8.push(0xff);
        assert!(Handover::split(&not_utf8).is_err());
    }
}
