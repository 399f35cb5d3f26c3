//! Fuzz target bodies, compiled into the library so that `cargo test` can
//! replay the seed corpora (`fuzz/seeds/<target>/`) and every crash found.
//! The cargo-fuzz project in `fuzz/` only calls these.
//!
//! Every body panics on a broken invariant and never otherwise. The
//! `engine` and `protocol_messages` bodies drive the engine through the
//! reference [`model`], the same one `tests/engine/model.rs` drives with
//! proptest. Compiled only with the `fuzzing` feature (the fuzz crate and
//! the tests turn it on).

pub mod bytes;
mod checks;
pub mod driver;
pub mod model;
pub mod ops;
mod resp;
pub mod seeds;
pub mod templates;
mod token;
mod websocket;

pub use resp::resp;
pub use token::{TOKEN_NOW, token};
pub use websocket::{seeds as websocket_seeds, websocket};

use crate::engine::{ConnId, EngineConfig};
use driver::Driver;
use model::{Model, Transition};
use templates::{Msg, RoomRef};

/// The engine's seed in every target.
const SEED: u64 = 0x5EED;

/// The engine's configuration in every target: heartbeats every 5 s, a
/// rate limit a burst of templated messages can reach, 4 rooms per
/// connection.
pub fn config() -> EngineConfig {
    EngineConfig {
        heartbeat_interval_ms: 5_000,
        presence_stats_interval_ms: 7_000,
        rate_limit_per_sec: 20,
        rate_limit_burst: 40,
        rate_limit_close_after_ms: 3_000,
        max_rooms_per_conn: 4,
        auth: None,
        cluster: None,
    }
}

/// Applies `t` to the model, then to the engines, and checks the step;
/// `false` if the driver does not send it (see [`Driver::vetoes`]).
pub fn step(model: &mut Model, driver: &mut Driver, t: &Transition) -> bool {
    if driver.vetoes(model, t) {
        return false;
    }
    model.apply(t);
    driver.apply(model, t);
    true
}

/// Runs every choice of `ops` that stands for a transition now.
pub fn run(model: &mut Model, driver: &mut Driver, ops: &[ops::Op]) {
    for op in ops {
        if let Some(t) = model.choose(op) {
            step(model, driver, &t);
        }
    }
}

/// `engine`: a byte-encoded sequence of choices (see [`ops`]), each the
/// model's next transition ([`Model::choose`]), applied to the model and
/// to two engines with the same seed and checked after every step
/// ([`driver`]); then every connection closes and nothing may remain.
pub fn engine(data: &[u8]) {
    let mut model = Model::new(config(), SEED);
    let mut driver = Driver::new(&model);
    run(&mut model, &mut driver, &ops::decode(data));
    driver.finish(&mut model);
}

/// `protocol_messages`: the input, as text, into every protocol's decoder,
/// then sent by a member of a room on every default route (two
/// connections each, already joined where the protocol has rooms), every
/// step checked against the model.
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
    let mut model = Model::new(config(), SEED);
    let mut driver = Driver::new(&model);
    for conn in joined_pairs(&mut model, &mut driver) {
        let msg = Msg::Text(text.clone());
        step(&mut model, &mut driver, &Transition::Send { conn, msg });
    }
    driver.finish(&mut model);
}

/// Opens two connections on every default route and joins them to a room
/// where the protocol has rooms; returns the first of each pair.
fn joined_pairs(model: &mut Model, driver: &mut Driver) -> Vec<ConnId> {
    use crate::protocol::Protocol;
    let mut senders = Vec::new();
    for (route, (_, protocol)) in crate::protocol::DEFAULT_ROUTES.into_iter().enumerate() {
        let mut open = |user| {
            let conn = ConnId(model.next_conn);
            step(model, driver, &Transition::Open { conn, route, user });
            conn
        };
        let (a, b) = (open(Some("1")), open(Some("lobby")));
        let enter = |user: &str| Msg::Enter {
            room: "lobby".into(),
            user: user.into(),
            name: user.into(),
        };
        let joins = match protocol {
            Protocol::Scratch => [Msg::Join("lobby".into()), Msg::Join("lobby".into())],
            Protocol::Signal => [Msg::Create, Msg::JoinRoom(RoomRef::Created(0))],
            Protocol::Stream => [enter("1"), enter("2")],
            Protocol::Presence | Protocol::Chat => {
                senders.push(a);
                continue;
            }
        };
        for (conn, msg) in [a, b].into_iter().zip(joins) {
            step(model, driver, &Transition::Send { conn, msg });
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

/// `bus`: a cluster node that has joined (one node, alone) and has
/// connections on every protocol, then the input as what Redis says:
/// each line a [`BusInput`](crate::engine::BusInput) in JSON, or, if it is
/// not one, the payload of an event message. The node's tables must stay
/// consistent after each.
pub fn bus(data: &[u8]) {
    use crate::engine::{BusInput, BusReply, ClusterPolicy, Engine, Input};
    let mut engine = Engine::new(
        EngineConfig {
            cluster: Some(ClusterPolicy {
                node_timeout_ms: 1_000,
            }),
            ..config()
        },
        SEED,
    );
    let mut now = 1_000_000;
    let joining = [
        BusInput::Up,
        BusInput::Reply {
            id: 1,
            reply: BusReply::Array(vec![BusReply::Int(1), BusReply::Text("e".into())]),
        },
        BusInput::Subscribed,
        BusInput::Message {
            payload: r#"1 {"e":"sync","node":1,"alone":true}"#.into(),
        },
    ];
    for input in joining {
        engine.handle(now, Input::Bus(input));
    }
    assert!(engine.accepting(), "the node joined");
    for (conn, (path, protocol)) in crate::protocol::DEFAULT_ROUTES.into_iter().enumerate() {
        let input = Input::Open {
            conn: ConnId(conn as u64 + 1),
            protocol,
            path: path.into(),
            query: "userId=lobby".into(),
            peer: None,
            identity: None,
        };
        engine.handle(now, input);
    }
    let _ = engine.drain_outputs().count();
    for line in String::from_utf8_lossy(data).split('\n') {
        let input = serde_json::from_str(line).unwrap_or_else(|_| BusInput::Message {
            payload: line.to_string(),
        });
        now += 100;
        engine.handle(now, Input::Bus(input));
        engine.handle(now, Input::Timeout);
        let _ = engine.drain_outputs().count();
        if let Err(e) = engine.check_invariants() {
            panic!("{e}");
        }
    }
}
