//! The `websocket` fuzz target: the codec the reactor runs on untrusted
//! bytes ([`crate::protocol::websocket::Codec`]), fed arbitrary bytes whole
//! and in arbitrary pieces.
//!
//! Input layout: the first byte is `k`, the next `k` bytes are piece
//! lengths (each 1 to 256, used in turn and repeated), the rest is the
//! client's byte stream.
//!
//! Checked: no panic; the messages decoded, and everything queued for the
//! client, are the same whatever the split; after a failure exactly one
//! close frame was queued, last, with 1002, 1007 or 1009, and nothing more
//! is decoded; after the client's close, exactly one close frame (the
//! reply) was queued, last.

use crate::protocol::websocket::{Codec, Decoded, Received};

/// The message size limit in the target: small, so that 1009 is reachable.
const MAX_MESSAGE_SIZE: usize = 4096;

/// The close codes a protocol failure may give (PROTOCOLS.md).
const FAILURE_CODES: [u16; 3] = [1002, 1007, 1009];

/// How a stream ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Every byte was decoded; more could come.
    Open,
    /// The close handshake completed.
    Finished,
    /// A failure with this close code.
    Failed(u16),
}

/// What decoding a stream gave.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    messages: Vec<Received>,
    end: End,
    outbound: Vec<u8>,
}

/// Decodes `stream` fed in pieces of the given lengths (cycled).
fn run(stream: &[u8], lengths: &[usize]) -> Run {
    let mut codec = Codec::new(&[], MAX_MESSAGE_SIZE, Vec::new());
    let mut messages = Vec::new();
    let mut end = End::Open;
    let mut rest = stream;
    let mut lengths = lengths.iter().cycle();
    'pieces: while !rest.is_empty() {
        let n = lengths
            .next()
            .copied()
            .unwrap_or(rest.len())
            .min(rest.len());
        let (mut piece, tail) = rest.split_at(n);
        rest = tail;
        loop {
            let (taken, decoded) = codec.decode(piece);
            piece = &piece[taken..];
            match decoded {
                Decoded::Message(m) => messages.push(m),
                Decoded::NeedMore => break,
                Decoded::Finished => {
                    end = End::Finished;
                    break 'pieces;
                }
                Decoded::Failed(close) => {
                    end = End::Failed(close.code());
                    break 'pieces;
                }
            }
        }
        assert!(piece.is_empty(), "NeedMore with input left");
    }
    if end != End::Open {
        let after = codec.decode(b"\x81\x80\0\0\0\0").1;
        assert!(
            !matches!(after, Decoded::Message(_)),
            "a closed codec decoded more"
        );
    }
    Run {
        messages,
        end,
        outbound: codec.unsent().to_vec(),
    }
}

/// The server's frames in `out` (never masked): `(opcode, payload)`.
fn frames(mut out: &[u8]) -> Vec<(u8, &[u8])> {
    let mut frames = Vec::new();
    while out.len() >= 2 {
        let opcode = out[0] & 0x0f;
        let (len, header) = match out[1] & 0x7f {
            126 if out.len() >= 4 => (usize::from(u16::from_be_bytes([out[2], out[3]])), 4),
            127 => panic!("a control frame with a 64-bit length"),
            126 => panic!("a truncated frame header"),
            n => (usize::from(n), 2),
        };
        assert!(out.len() >= header + len, "a truncated frame");
        frames.push((opcode, &out[header..header + len]));
        out = &out[header + len..];
    }
    assert!(out.is_empty(), "a truncated frame");
    frames
}

/// The fuzz body; see the module docs.
pub fn websocket(data: &[u8]) {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k).min(rest.len());
    let (lengths, stream) = rest.split_at(k);
    let lengths: Vec<usize> = lengths.iter().map(|&b| usize::from(b) + 1).collect();
    let whole = run(stream, &[]);
    let split = run(stream, &lengths);
    assert_eq!(whole, split, "decoding depends on how the bytes were split");
    let sent = frames(&whole.outbound);
    let closes: Vec<_> = sent.iter().filter(|(op, _)| *op == 0x8).collect();
    match whole.end {
        End::Open => assert!(closes.is_empty(), "a close frame without a close"),
        End::Finished | End::Failed(_) => {
            assert_eq!(closes.len(), 1, "not exactly one close frame");
            assert_eq!(sent.last().map(|f| f.0), Some(0x8), "the close is not last");
        }
    }
    if let End::Failed(code) = whole.end {
        assert!(FAILURE_CODES.contains(&code), "failure code {code}");
        let payload = closes[0].1;
        assert!(payload.len() >= 2, "a failure's close frame without a code");
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code);
    }
}

/// Seeds: valid streams, fragmented ones, and each kind of failure.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let masked = |fin: bool, opcode: u8, payload: &[u8]| {
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        let mut f = vec![u8::from(fin) << 7 | opcode];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    };
    let text = |t: &str| masked(true, 0x1, t.as_bytes());
    let with_splits = |stream: Vec<u8>| [&[3u8, 0, 6, 1][..], &stream].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("text", text(r#"{"type":"x","payload":"before"}"#)),
        (
            "fragments_and_ping",
            [
                masked(false, 0x1, b"he"),
                masked(true, 0x9, b"p"),
                masked(true, 0x0, b"llo"),
            ]
            .concat(),
        ),
        (
            "client_close",
            [text("a"), masked(true, 0x8, &1000u16.to_be_bytes())].concat(),
        ),
        (
            "reserved_opcode",
            [text("a"), masked(true, 0x3, b""), text("b")].concat(),
        ),
        (
            "rsv1",
            [text("a"), vec![0xc1, 0x80, 0, 0, 0, 0], text("b")].concat(),
        ),
        ("unmasked", [text("a"), vec![0x81, 0x01, b'x']].concat()),
        (
            "invalid_utf8",
            [text("a"), masked(true, 0x1, &[0xce, 0xba, 0xff])].concat(),
        ),
        (
            "too_big",
            [text("a"), masked(true, 0x1, &[b'a'; 5000])].concat(),
        ),
        ("bad_close_code", masked(true, 0x8, &999u16.to_be_bytes())),
    ];
    cases
        .into_iter()
        .map(|(name, stream)| (name.to_string(), with_splits(stream)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_run_clean_and_fail_as_named() {
        for (name, data) in seeds() {
            websocket(&data);
            let end = run(&data[4..], &[]).end;
            let expected = match name.as_str() {
                "text" | "fragments_and_ping" => End::Open,
                // An invalid close code is answered with a 1002 close
                // frame, which completes the handshake.
                "client_close" | "bad_close_code" => End::Finished,
                "invalid_utf8" => End::Failed(1007),
                "too_big" => End::Failed(1009),
                _ => End::Failed(1002),
            };
            assert_eq!(end, expected, "{name}");
        }
    }
}
