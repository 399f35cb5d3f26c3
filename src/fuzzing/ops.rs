//! The `engine` target's input: a byte-encoded sequence of choices, each
//! turned into the model's next transition by
//! [`super::model::Model::choose`].
//!
//! Each operation is an opcode byte (taken modulo 8) and fixed-size
//! arguments, so any byte string decodes (missing bytes read as zero) and
//! [`encode`] writes seed files from readable scenarios.

use super::bytes::Bytes;

/// Longest raw text message, in bytes.
const MAX_RAW: usize = 4096;
/// Most operations decoded from one input.
const MAX_OPS: usize = 1024;

/// One choice of the `engine` target. `conn` picks a live connection by
/// index (modulo their number); pools are indexed modulo their size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Open a connection on route `route` (into
    /// [`super::model::routes`]); presence connections get `userId=` a
    /// name picked by `user` (one value past the names: no `userId`).
    Open {
        /// Route index.
        route: u8,
        /// User name index (presence only).
        user: u8,
    },
    /// A realistic message of the connection's protocol
    /// ([`super::templates::template`]).
    Template {
        /// Sender.
        conn: u8,
        /// Template index.
        template: u8,
        /// Slot values: indexes into the name pool (slot 0 on `signal`
        /// picks a created room).
        slots: [u8; 3],
    },
    /// Arbitrary text (lossily made UTF-8); the bytes 0xFF 0xNN instead
    /// select malformed message NN.
    Raw {
        /// Sender.
        conn: u8,
        /// The message bytes.
        text: Vec<u8>,
    },
    /// A binary message.
    Binary {
        /// Sender.
        conn: u8,
        /// Its length.
        len: u16,
    },
    /// A pong frame.
    Pong {
        /// Sender.
        conn: u8,
    },
    /// The connection closes.
    Close {
        /// Which.
        conn: u8,
    },
    /// Time moves forward by `quarter_secs / 4` seconds, then a tick.
    Tick {
        /// Advance in units of 250 ms.
        quarter_secs: u16,
    },
    /// Time moves forward by `ms` milliseconds, no input.
    Wait {
        /// Advance in milliseconds.
        ms: u8,
    },
}

/// Decodes every operation in `data` (at most [`MAX_OPS`]).
pub fn decode(data: &[u8]) -> Vec<Op> {
    let mut b = Bytes::new(data);
    let mut ops = Vec::new();
    while !b.is_empty() && ops.len() < MAX_OPS {
        let op = match b.u8() % 8 {
            0 => Op::Open {
                route: b.u8(),
                user: b.u8(),
            },
            1 => Op::Template {
                conn: b.u8(),
                template: b.u8(),
                slots: [b.u8(), b.u8(), b.u8()],
            },
            2 => {
                let conn = b.u8();
                let len = usize::from(b.u16()).min(MAX_RAW);
                Op::Raw {
                    conn,
                    text: b.take(len).to_vec(),
                }
            }
            3 => Op::Binary {
                conn: b.u8(),
                len: b.u16(),
            },
            4 => Op::Pong { conn: b.u8() },
            5 => Op::Close { conn: b.u8() },
            6 => Op::Tick {
                quarter_secs: b.u16(),
            },
            _ => Op::Wait { ms: b.u8() },
        };
        ops.push(op);
    }
    ops
}

/// Encodes `ops` so that [`decode`] gives them back.
pub fn encode(ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        match op {
            Op::Open { route, user } => out.extend([0, *route, *user]),
            Op::Template {
                conn,
                template,
                slots,
            } => {
                out.extend([1, *conn, *template]);
                out.extend(slots);
            }
            Op::Raw { conn, text } => {
                let len = text.len().min(MAX_RAW);
                out.extend([2, *conn]);
                out.extend((len as u16).to_le_bytes());
                out.extend(&text[..len]);
            }
            Op::Binary { conn, len } => {
                out.extend([3, *conn]);
                out.extend(len.to_le_bytes());
            }
            Op::Pong { conn } => out.extend([4, *conn]),
            Op::Close { conn } => out.extend([5, *conn]),
            Op::Tick { quarter_secs } => {
                out.push(6);
                out.extend(quarter_secs.to_le_bytes());
            }
            Op::Wait { ms } => out.extend([7, *ms]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_gives_the_ops_back() {
        let ops = vec![
            Op::Open { route: 3, user: 1 },
            Op::Template {
                conn: 0,
                template: 2,
                slots: [1, 2, 3],
            },
            Op::Raw {
                conn: 9,
                text: b"{\"type\":\"ping\"}".to_vec(),
            },
            Op::Binary { conn: 1, len: 300 },
            Op::Pong { conn: 2 },
            Op::Close { conn: 3 },
            Op::Tick { quarter_secs: 1000 },
            Op::Wait { ms: 200 },
        ];
        assert_eq!(decode(&encode(&ops)), ops);
    }

    #[test]
    fn any_bytes_decode() {
        assert_eq!(decode(&[]), vec![]);
        assert_eq!(decode(&[2, 0, 0xFF, 0xFF, b'x']).len(), 1);
        assert_eq!(decode(&[8 + 4]), vec![Op::Pong { conn: 0 }]);
    }
}
