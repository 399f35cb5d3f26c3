//! The `resp` fuzz target: Redis's bytes are untrusted too.
//!
//! The input (after its first byte, which picks a cut) is decoded whole,
//! and again in two pieces cut there; then it is fed as Redis's answer to
//! both connections of a ready [`Machine`] with commands and a
//! subscription outstanding.
//!
//! Checked: no panic; the same replies (or the same error, at the same
//! reply) whether the bytes came whole or cut; a reply's nesting is at most
//! [`MAX_DEPTH`]; every command the machine took is answered at most once.

use crate::protocol::resp::{Decoder, MAX_DEPTH, Reply, RespError};
use crate::server::redis::{Event, Machine, RedisConfig, RedisUrl, Which};
use std::time::Duration;

/// Replies and the first error, feeding `pieces` in turn.
fn decode_all(pieces: &[&[u8]]) -> (Vec<Reply>, Option<RespError>) {
    let mut d = Decoder::new(1 << 16);
    let mut replies = Vec::new();
    for piece in pieces {
        d.feed(piece);
        loop {
            match d.next_reply() {
                Ok(Some(r)) => replies.push(r),
                Ok(None) => break,
                Err(e) => return (replies, Some(e)),
            }
        }
    }
    (replies, None)
}

fn depth(r: &Reply) -> usize {
    match r {
        Reply::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The target body.
pub fn resp(data: &[u8]) {
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(bytes.len());
    let whole = decode_all(&[bytes]);
    let split = decode_all(&[&bytes[..cut], &bytes[cut..]]);
    // A size error may come sooner when the bytes come whole: compare
    // replies only when neither is one.
    let too_large = |r: &(Vec<Reply>, Option<RespError>)| r.1 == Some(RespError::TooLarge);
    if !too_large(&whole) && !too_large(&split) {
        assert_eq!(whole, split, "cut at {cut}");
    }
    for r in &whole.0 {
        assert!(depth(r) <= MAX_DEPTH);
    }

    let url = RedisUrl::parse("redis://127.0.0.1:6379").expect("a fixed URL");
    let mut m = Machine::new(RedisConfig::new(url, Duration::from_secs(5)), 0);
    for w in Which::BOTH {
        m.opened(w, 0);
        m.received(w, b"+PONG\r\n", 0);
    }
    m.subscribe(b"ch".to_vec(), false, 0);
    for id in 0..4 {
        m.submit(id, vec![b"GET".to_vec(), b"k".to_vec()], 0);
    }
    for w in Which::BOTH {
        m.received(w, &bytes[..cut], 1);
        m.received(w, &bytes[cut..], 2);
    }
    m.handle_timeout(10_000);
    let mut answered = [0u8; 4];
    while let Some(event) = m.poll_event() {
        if let Event::Reply { id, .. } = event {
            let slot = usize::try_from(id).ok().and_then(|i| answered.get_mut(i));
            let slot = slot.expect("a reply to a command submitted");
            *slot += 1;
            assert_eq!(*slot, 1, "command {id} answered twice");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_body_takes_anything() {
        super::resp(b"");
        super::resp(b"\x03+OK\r\n:1\r\n*2\r\n$1\r\na\r\n");
        super::resp(&[b"\x05".as_slice(), &b"*1\r\n".repeat(100)].concat());
    }
}
