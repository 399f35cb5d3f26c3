//! Fuzz target bodies, compiled into the library so that `cargo test` can
//! replay the seed corpora (`fuzz/seeds/<target>/`) and every crash found.
//! The cargo-fuzz project in `fuzz/` only calls these.
//!
//! Every body panics on a broken invariant and never otherwise.

pub mod bytes;
pub mod harness;
pub mod ops;
pub mod seeds;
pub mod templates;
mod token;
mod websocket;

pub use token::{TOKEN_NOW, token};
pub use websocket::{seeds as websocket_seeds, websocket};

use crate::engine::Input;
use harness::Harness;
use templates::ROUTES;

/// The engine's seed in every target.
const SEED: u64 = 0x5EED;

/// `engine`: a byte-encoded sequence of opens, messages, pongs, closes and
/// ticks (see [`ops`]), checked after every step and replayed a second
/// time to check that the same inputs give the same outputs.
pub fn engine(data: &[u8]) {
    let ops = ops::decode(data);
    let mut first = Harness::new(SEED);
    ops::run(&mut first, &ops);
    let mut second = Harness::new(SEED);
    ops::run(&mut second, &ops);
    assert_eq!(
        first.digest(),
        second.digest(),
        "same seed and inputs gave different outputs"
    );
}

/// `protocol_messages`: the input, as text, into every protocol's decoder,
/// then sent by a member of a room on every route (two connections each,
/// already joined where the protocol has rooms).
pub fn protocol_messages(data: &[u8]) {
    use crate::protocol::{chat, presence, scratch, signal, stream};
    let text = String::from_utf8_lossy(data).into_owned();
    // Any result is fine; only a panic is a bug.
    let _ = chat::decode(&text);
    let _ = presence::decode(&text);
    let _ = presence::user_id_from_query(&text);
    let _ = scratch::decode(&text);
    let _ = signal::decode(&text);
    let _ = stream::decode(&text);
    let mut h = Harness::new(SEED);
    let senders = joined_pairs(&mut h);
    for conn in senders {
        h.step(Input::Text {
            conn,
            text: text.clone(),
        });
    }
}

/// Opens two connections on every default route and joins them to a room
/// where the protocol has rooms; returns the first of each pair.
fn joined_pairs(h: &mut Harness) -> Vec<crate::engine::ConnId> {
    use crate::protocol::Protocol;
    let text = |conn, text: &str| Input::Text {
        conn,
        text: text.to_string(),
    };
    let mut senders = Vec::new();
    for (path, protocol) in ROUTES {
        let query = |user: &str| match protocol {
            Protocol::Presence => format!("userId={user}"),
            _ => String::new(),
        };
        let a = h.open(protocol, path, query("1"));
        let b = h.open(protocol, path, query("lobby"));
        match protocol {
            Protocol::Scratch => {
                h.step(text(a, r#"{"type":"join","sessionId":"lobby"}"#));
                h.step(text(b, r#"{"type":"join","sessionId":"lobby"}"#));
            }
            Protocol::Signal => {
                h.step(text(a, r#"{"type":"create-room"}"#));
                if let Some(room) = h.signal_rooms.last().cloned() {
                    let join = format!(r#"{{"type":"join-room","roomId":"{room}"}}"#);
                    h.step(text(b, &join));
                }
            }
            Protocol::Stream => {
                let join = r#"{"type":"join-room","roomId":"lobby","userId":"1","userName":"A"}"#;
                h.step(text(a, join));
                let join = r#"{"type":"join-room","roomId":"lobby","userId":"2","userName":"B"}"#;
                h.step(text(b, join));
            }
            Protocol::Presence | Protocol::Chat => {}
        }
        senders.push(a);
    }
    senders
}

/// `journal`: the journal reader on arbitrary bytes, then a replay check of
/// whatever parses.
pub fn journal(data: &[u8]) {
    // Any result is fine; only a panic is a bug.
    let _ = crate::replay::check(data);
}

/// `http_request`: arbitrary bytes into the HTTP request parser. A complete
/// request's length is within the input and the limit, and parsing just
/// those bytes gives the same request.
pub fn http_request(data: &[u8]) {
    use crate::protocol::http::{MAX_REQUEST_BYTES, Parsed, parse_request};
    let Ok(Parsed::Complete { request, len }) = parse_request(data) else {
        return;
    };
    assert!(
        len <= data.len() && len <= MAX_REQUEST_BYTES,
        "length {len}"
    );
    let again = parse_request(&data[..len]);
    assert_eq!(
        again,
        Ok(Parsed::Complete {
            request: request.clone(),
            len
        }),
        "the request's own bytes parse differently"
    );
    let _ = crate::protocol::presence::user_id_from_query(&request.query);
}
