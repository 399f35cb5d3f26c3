//! A stable digest of the outputs the engine produced for one input.
//!
//! FNV-1a 64 steps over a canonical sequence of 64-bit words (the output
//! count, then per output its kind tag, connection id, close code, and each
//! text as its length and its own byte-wise FNV-1a 64), so it never depends
//! on a `HashMap` seed, pointer values or the Rust version. A broadcast's recipients share one `Arc` text, which
//! is hashed once: hashing the same text again would give the same value.

use crate::engine::Output;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The digest of a sequence of outputs; written as 16 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Digest(pub u64);

impl Digest {
    /// The digest of `outputs`, in order.
    pub fn of(outputs: &[Output]) -> Digest {
        let mut h = Words(FNV_OFFSET);
        h.word(outputs.len() as u64);
        let mut last: Option<(&Arc<str>, u64)> = None;
        for output in outputs {
            match output {
                Output::Send { conn, text } => {
                    let text_hash = match last {
                        Some((prev, hash)) if Arc::ptr_eq(prev, text) => hash,
                        _ => fnv1a(text.as_bytes()),
                    };
                    last = Some((text, text_hash));
                    h.words([1, conn.0, text.len() as u64, text_hash]);
                }
                Output::Ping { conn } => h.words([2, conn.0]),
                Output::Close { conn, reason } => h.words([
                    3,
                    conn.0,
                    u64::from(reason.code()),
                    reason.reason().len() as u64,
                    fnv1a(reason.reason().as_bytes()),
                ]),
                Output::Terminate { conn } => h.words([4, conn.0]),
                Output::Bus { id, command } => {
                    let json = serde_json::to_string(command).unwrap_or_default();
                    h.words([5, *id, fnv1a(json.as_bytes())]);
                }
            }
        }
        Digest(h.0)
    }
}

/// FNV-1a steps taking a whole word at a time.
struct Words(u64);

impl Words {
    fn word(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(FNV_PRIME);
    }

    fn words<const N: usize>(&mut self, words: [u64; N]) {
        for w in words {
            self.word(w);
        }
    }
}

/// Byte-wise FNV-1a 64.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    h
}
impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(serde::de::Error::custom("digest must be 16 hex digits"));
        }
        u64::from_str_radix(&s, 16)
            .map(Digest)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ConnId;
    use crate::protocol::close::CloseReason;

    fn send(conn: u64, text: &str) -> Output {
        Output::Send {
            conn: ConnId(conn),
            text: text.into(),
        }
    }

    #[test]
    fn known_values_never_change() {
        // Recorded journals depend on these: a change here breaks replay.
        assert_eq!(Digest::of(&[]).to_string(), "af63bd4c8601b7df");
        // Cross-checked with an independent FNV-1a implementation.
        assert_eq!(
            Digest::of(&[send(1, "{\"type\":\"pong\"}")]).to_string(),
            "b9e70a9a82e9451a"
        );
    }

    #[test]
    fn sensitive_to_every_field_and_order() {
        let base = [send(1, "ab"), Output::Ping { conn: ConnId(2) }];
        let variants: Vec<Vec<Output>> = vec![
            vec![send(1, "ab")],
            vec![send(2, "ab"), Output::Ping { conn: ConnId(2) }],
            vec![send(1, "ac"), Output::Ping { conn: ConnId(2) }],
            vec![Output::Ping { conn: ConnId(2) }, send(1, "ab")],
            vec![send(1, "ab"), Output::Terminate { conn: ConnId(2) }],
            vec![send(1, "a"), send(1, "b")],
            vec![
                send(1, "ab"),
                Output::Close {
                    conn: ConnId(2),
                    reason: CloseReason::Binary,
                },
            ],
        ];
        let d = Digest::of(&base);
        for v in variants {
            assert_ne!(Digest::of(&v), d, "{v:?}");
        }
        let close = |reason| Output::Close {
            conn: ConnId(2),
            reason,
        };
        let binary = Digest::of(&[close(CloseReason::Binary)]);
        assert_ne!(binary, Digest::of(&[close(CloseReason::RouteMismatch)]));
        // Same code, another reason.
        let rate = Digest::of(&[close(CloseReason::RateLimited)]);
        let user = CloseReason::InvalidUserId(crate::protocol::presence::UserIdError::Empty);
        assert_ne!(rate, Digest::of(&[close(user)]));
    }

    #[test]
    fn a_shared_text_digests_like_copies_of_it() {
        let shared: Arc<str> = "{\"type\":\"chat\"}".into();
        let sends = |text: &dyn Fn() -> Arc<str>| -> Vec<Output> {
            (1..=3)
                .map(|c| Output::Send {
                    conn: ConnId(c),
                    text: text(),
                })
                .collect()
        };
        let shared_digest = Digest::of(&sends(&|| shared.clone()));
        let copies_digest = Digest::of(&sends(&|| Arc::from(&*shared)));
        assert_eq!(shared_digest, copies_digest);
        let mut other = sends(&|| shared.clone());
        other[2] = send(3, "{\"type\":\"chaT\"}");
        assert_ne!(Digest::of(&other), shared_digest);
    }

    #[test]
    fn hex_round_trip() {
        let d = Digest(0x0123_4567_89ab_cdef);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, "\"0123456789abcdef\"");
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"123\"").is_err());
        assert!(serde_json::from_str::<Digest>("\"0123456789abcdeg\"").is_err());
        assert!(serde_json::from_str::<Digest>("\"+123456789abcdef\"").is_err());
    }
}
