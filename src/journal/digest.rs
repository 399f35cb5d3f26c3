//! A stable digest of the outputs the engine produced for one input.
//!
//! FNV-1a 64 over a canonical byte encoding of each output (kind tag,
//! connection id, close code, text bytes, all lengths explicit), so it never
//! depends on a `HashMap` seed, pointer values or the Rust version.

use crate::engine::Output;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The digest of a sequence of outputs; written as 16 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Digest(pub u64);

impl Digest {
    /// The digest of `outputs`, in order.
    pub fn of(outputs: &[Output]) -> Digest {
        let mut h = Fnv1a(FNV_OFFSET);
        h.bytes(&(outputs.len() as u64).to_le_bytes());
        for output in outputs {
            match output {
                Output::Send { conn, text } => {
                    h.bytes(&[1]);
                    h.bytes(&conn.0.to_le_bytes());
                    h.text(text);
                }
                Output::Ping { conn } => {
                    h.bytes(&[2]);
                    h.bytes(&conn.0.to_le_bytes());
                }
                Output::Close { conn, code, reason } => {
                    h.bytes(&[3]);
                    h.bytes(&conn.0.to_le_bytes());
                    h.bytes(&code.to_le_bytes());
                    h.text(reason);
                }
                Output::Terminate { conn } => {
                    h.bytes(&[4]);
                    h.bytes(&conn.0.to_le_bytes());
                }
            }
        }
        Digest(h.0)
    }
}

struct Fnv1a(u64);

impl Fnv1a {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    fn text(&mut self, text: &str) {
        self.bytes(&(text.len() as u64).to_le_bytes());
        self.bytes(text.as_bytes());
    }
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

    fn send(conn: u64, text: &str) -> Output {
        Output::Send {
            conn: ConnId(conn),
            text: text.into(),
        }
    }

    #[test]
    fn known_values_never_change() {
        // Recorded journals depend on these: a change here breaks replay.
        assert_eq!(Digest::of(&[]).to_string(), "a8c7f832281a39c5");
        // Cross-checked with an independent FNV-1a implementation.
        assert_eq!(
            Digest::of(&[send(1, "{\"type\":\"pong\"}")]).to_string(),
            "7d2fe3c26dfd510d"
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
                    code: 1000,
                    reason: "",
                },
            ],
        ];
        let d = Digest::of(&base);
        for v in variants {
            assert_ne!(Digest::of(&v), d, "{v:?}");
        }
        let close = |code| Output::Close {
            conn: ConnId(2),
            code,
            reason: "x",
        };
        assert_ne!(Digest::of(&[close(1000)]), Digest::of(&[close(1001)]));
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
