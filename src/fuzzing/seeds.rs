//! Readable scenarios that are written as the `engine` target's seed
//! corpus (`fuzz/seeds/engine/`), one per protocol plus cross-cutting ones.

use super::ops::{Op, encode};

// Route indexes into `model::routes()`.
const SCRATCH: u8 = 0;
const SIGNAL: u8 = 1;
const PRESENCE: u8 = 2;
const ONLINE_STATUS: u8 = 3;
const CHAT: u8 = 4;
const STREAM: u8 = 5;
const SCRATCH_2: u8 = 6;
const SIGNAL_2: u8 = 7;
const CHAT_2: u8 = 8;
const STREAM_2: u8 = 9;
/// The user index past the names: no `userId`.
const NO_USER: u8 = 7;
/// Slot 0 picking the sender's own session or room.
const OWN: u8 = 0x80;

fn open(route: u8, user: u8) -> Op {
    Op::Open { route, user }
}

fn say(conn: u8, template: u8, slots: [u8; 3]) -> Op {
    Op::Template {
        conn,
        template,
        slots,
    }
}

fn raw(conn: u8, text: &str) -> Op {
    Op::Raw {
        conn,
        text: text.as_bytes().to_vec(),
    }
}

fn malformed(conn: u8, which: u8) -> Op {
    Op::Raw {
        conn,
        text: vec![0xFF, which],
    }
}

fn tick(secs: u16) -> Op {
    Op::Tick {
        quarter_secs: secs * 4,
    }
}

/// Every seed scenario: a file name and its operations.
pub fn scenarios() -> Vec<(&'static str, Vec<Op>)> {
    vec![
        (
            "chat_broadcast",
            vec![
                open(CHAT, 0),
                open(CHAT, 1),
                open(CHAT, 2),
                say(0, 1, [0, 0, 0]),
                say(1, 2, [1, 2, 0]),
                say(2, 3, [2, 0, 0]),
                say(0, 0, [0, 0, 0]),
                raw(1, r#"{"type":"chat","payload":{"text":"raw","n":[1,2]}}"#),
                malformed(2, 1),
                Op::Close { conn: 0 },
                say(0, 2, [3, 3, 3]),
                tick(1),
            ],
        ),
        (
            "signal_relay",
            vec![
                open(SIGNAL, 0),
                open(SIGNAL, 0),
                open(SIGNAL, 0),
                say(0, 0, [0, 0, 0]),
                say(1, 1, [0, 0, 0]),
                say(0, 2, [0, 0, 0]),
                say(1, 3, [0, 0, 0]),
                say(1, 4, [0, 1, 0]),
                say(2, 1, [0, 0, 0]),
                say(2, 2, [0, 0, 0]),
                raw(
                    0,
                    r#"{"type":"signal","roomId":"999999","signal":{"type":"answer"}}"#,
                ),
                Op::Close { conn: 0 },
                say(0, 2, [0, 0, 0]),
            ],
        ),
        (
            "stream_rooms",
            vec![
                open(STREAM, 0),
                open(STREAM, 0),
                open(STREAM, 0),
                say(0, 0, [0, 1, 1]),
                say(1, 0, [0, 2, 2]),
                say(0, 1, [0, 1, 0]),
                say(1, 3, [0, 2, 5]),
                say(1, 1, [0, 1, 0]),
                say(2, 0, [0, 1, 1]),
                say(0, 3, [0, 1, 0]),
                say(2, 2, [0, 1, 0]),
                say(1, 5, [0, 2, 0]),
                say(1, 4, [0, 2, 0]),
                Op::Close { conn: 2 },
            ],
        ),
        (
            "scratch_sync",
            vec![
                open(SCRATCH, 0),
                open(SCRATCH, 0),
                open(SCRATCH, 0),
                say(0, 0, [0, 0, 0]),
                say(1, 0, [0, 0, 0]),
                say(2, 0, [1, 0, 0]),
                say(0, 1, [0, 0, 0]),
                say(1, 2, [0, 0, 0]),
                say(2, 1, [0, 0, 0]),
                say(0, 3, [0, 0, 0]),
                say(0, 3, [0, 0, 0]),
                say(1, 4, [0, 0, 0]),
                say(2, 5, [0, 0, 0]),
                Op::Close { conn: 1 },
            ],
        ),
        (
            "presence_users",
            vec![
                open(PRESENCE, 3),
                open(PRESENCE, 1),
                open(PRESENCE, 1),
                open(ONLINE_STATUS, 3),
                say(0, 0, [0, 0, 0]),
                say(1, 1, [0, 0, 0]),
                Op::Close { conn: 1 },
                Op::Close { conn: 1 },
                tick(8),
                say(0, 2, [0, 0, 0]),
            ],
        ),
        (
            "heartbeat_timeout",
            vec![
                open(CHAT, 0),
                open(PRESENCE, 0),
                open(STREAM, 0),
                say(2, 0, [0, 0, 0]),
                tick(5),
                Op::Pong { conn: 0 },
                Op::Wait { ms: 200 },
                tick(5),
                tick(5),
            ],
        ),
        (
            "garbage_everywhere",
            vec![
                open(SCRATCH, 0),
                open(SIGNAL, 0),
                open(PRESENCE, 2),
                open(CHAT, 0),
                open(STREAM, 0),
                malformed(0, 0),
                malformed(1, 2),
                malformed(2, 3),
                malformed(3, 4),
                malformed(4, 5),
                malformed(0, 6),
                malformed(1, 7),
                raw(2, "{\"type\":\"PING\"\u{0}}"),
                Op::Binary { conn: 3, len: 10 },
                Op::Binary { conn: 0, len: 0 },
                raw(4, "{\"type\":\"join-room\",\"roomId\":[],\"userId\":{}}"),
            ],
        ),
        (
            "second_routes_and_own_rooms",
            vec![
                open(SCRATCH_2, 0),
                open(SCRATCH_2, 0),
                open(STREAM_2, 0),
                open(STREAM_2, 0),
                open(PRESENCE, NO_USER),
                open(CHAT_2, 0),
                open(SIGNAL_2, 0),
                open(SIGNAL_2, 0),
                say(0, 0, [1, 0, 0]),
                say(1, 0, [1, 0, 0]),
                say(0, 1, [OWN, 0, 0]),
                say(1, 3, [0, 0, 0]),
                say(2, 0, [0, 1, 1]),
                say(3, 0, [0, 2, 2]),
                say(2, 1, [OWN, 0, 0]),
                say(3, 3, [OWN, 0, 0]),
                say(3, 4, [OWN, 0, 0]),
                say(5, 0, [0, 0, 0]),
                say(6, 1, [0, 0, 0]),
                say(5, 2, [0, 0, 0]),
                say(4, 2, [0, 1, 0]),
                tick(6),
                Op::Close { conn: 0 },
            ],
        ),
        (
            "rate_limit_burst",
            std::iter::once(open(CHAT, 0))
                .chain(std::iter::once(open(CHAT, 0)))
                .chain((0..120).map(|i| say(0, 2, [i, 0, 0])))
                .chain(std::iter::once(tick(4)))
                .chain((0..60).map(|_| say(0, 0, [0, 0, 0])))
                .collect(),
        ),
    ]
}

/// Every seed scenario as a file name and the bytes of its encoding.
pub fn engine_seeds() -> Vec<(&'static str, Vec<u8>)> {
    scenarios()
        .into_iter()
        .map(|(name, ops)| (name, encode(&ops)))
        .collect()
}

/// The `protocol_messages` seeds: every template of every protocol, filled
/// with plausible values, and every malformed message.
pub fn message_seeds() -> Vec<(String, Vec<u8>)> {
    use super::templates::{Context, MALFORMED, TEMPLATES_PER_PROTOCOL, template};
    use crate::protocol::Protocol;
    let mut seeds = Vec::new();
    for p in Protocol::ALL {
        for i in 0..TEMPLATES_PER_PROTOCOL[p.index()] {
            let cx = Context {
                created: 1,
                own: Vec::new(),
            };
            let text = template(p, i as u8, [0, 1, 2], &cx).render(&["123456".into()]);
            seeds.push((format!("{}_{i}", p.name()), text.into_bytes()));
        }
    }
    for (i, m) in MALFORMED.iter().enumerate() {
        seeds.push((format!("malformed_{i}"), m.as_bytes().to_vec()));
    }
    seeds
}

/// The `journal` seeds: each engine scenario recorded as a journal (the
/// digests are whatever the engine produced when the seeds were written).
pub fn journal_seeds() -> Vec<(String, Vec<u8>)> {
    use super::{Driver, Model, config, run};
    scenarios()
        .into_iter()
        .take(4)
        .map(|(name, ops)| {
            let mut model = Model::new(config(), 1);
            let mut driver = Driver::new(&model);
            driver.record_journal(&model);
            run(&mut model, &mut driver, &ops);
            (format!("{name}.jsonl"), driver.take_journal())
        })
        .collect()
}
