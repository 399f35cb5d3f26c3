//! In-engine throughput, no sockets: `cargo bench --bench engine`.
//!
//! 1. `chat-message` broadcast in a 1,000-member `stream` room:
//!    deliveries (one `Output::Send` per recipient) per second.
//! 2. A mixed workload over every protocol (joins, leaves, broadcasts,
//!    relays, pings, malformed messages, opens and closes, ticks):
//!    inputs per second.
//!
//! Outputs are drained and dropped after every input, as the reactor would.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use roomd::engine::rng::Rng;
use roomd::engine::{ConnId, Engine, EngineConfig, Input};
use roomd::protocol::Protocol;
use std::time::{Duration, Instant};

const T0: u64 = 1_704_110_400_000;

fn config() -> EngineConfig {
    // No rate limit: one sender floods on purpose.
    EngineConfig {
        rate_limit_per_sec: 0,
        ..EngineConfig::default()
    }
}

fn open(e: &mut Engine, now: u64, conn: u64, protocol: Protocol, query: String) {
    let path = format!("/{protocol}");
    e.handle(
        now,
        Input::Open {
            conn: ConnId(conn),
            protocol,
            path,
            query,
            peer: None,
            identity: None,
        },
    );
    e.drain_outputs().for_each(drop);
}

fn text(e: &mut Engine, now: u64, conn: u64, text: String) -> usize {
    e.handle(
        now,
        Input::Text {
            conn: ConnId(conn),
            text,
        },
    );
    e.drain_outputs().count()
}

/// Runs `step` until `budget` has passed; returns (iterations, elapsed).
fn timed(budget: Duration, mut step: impl FnMut(u64) -> usize) -> (usize, usize, Duration) {
    let start = Instant::now();
    let (mut iterations, mut outputs) = (0, 0);
    while start.elapsed() < budget {
        for _ in 0..64 {
            outputs += step(iterations as u64);
            iterations += 1;
        }
    }
    (iterations, outputs, start.elapsed())
}

fn broadcast_in_a_big_room(members: u64) {
    let mut e = Engine::new(config(), 1);
    for conn in 1..=members {
        open(&mut e, T0, conn, Protocol::Stream, String::new());
        let join = format!(
            r#"{{"type":"join-room","roomId":"big","userId":"u{conn}","userName":"User {conn}"}}"#
        );
        text(&mut e, T0, conn, join);
    }
    let msg = r#"{"type":"chat-message","roomId":"big","userId":"u1","content":"hello everyone in the room"}"#;
    // Time moves 1 ms per message, so the timestamp is formatted each time.
    let (iterations, deliveries, elapsed) = timed(Duration::from_secs(2), |i| {
        text(&mut e, T0 + i, 1, msg.to_string())
    });
    assert_eq!(deliveries, iterations * members as usize);
    let per_sec = deliveries as f64 / elapsed.as_secs_f64();
    println!(
        "stream chat-message broadcast, {members} members: {iterations} messages, {deliveries} deliveries in {:.2} s = {:.1} M deliveries/s",
        elapsed.as_secs_f64(),
        per_sec / 1e6
    );
}

/// A population of connections over every protocol, driven by a seeded mix.
fn mixed_workload() {
    const CONNS: u64 = 2_000;
    let mut e = Engine::new(config(), 2);
    let mut rng = Rng::new(99);
    let mut protocols = Vec::new();
    for conn in 1..=CONNS {
        let protocol = Protocol::ALL[(conn % 5) as usize];
        open(
            &mut e,
            T0,
            conn,
            protocol,
            format!("userId=user{}", conn % 700),
        );
        protocols.push(protocol);
    }
    let mut next_conn = CONNS + 1;
    let mut live: Vec<u64> = (1..=CONNS).collect();
    let (iterations, outputs, elapsed) = timed(Duration::from_secs(2), |i| {
        let now = T0 + i / 8;
        let slot = rng.below(live.len() as u64) as usize;
        let conn = live[slot];
        let protocol = Protocol::ALL[(conn % 5) as usize];
        let r = rng.below(100);
        if r < 2 {
            // Churn: close a connection, open a fresh one in its place.
            e.handle(now, Input::Closed { conn: ConnId(conn) });
            let n = e.drain_outputs().count();
            let fresh = next_conn;
            next_conn += 1;
            let protocol = Protocol::ALL[(fresh % 5) as usize];
            open(
                &mut e,
                now,
                fresh,
                protocol,
                format!("userId=user{}", fresh % 700),
            );
            live[slot] = fresh;
            return n + 1;
        }
        if r < 4 {
            e.handle(now, Input::Timeout);
            return e.drain_outputs().count();
        }
        let room = rng.below(200);
        let msg = match (protocol, r % 4) {
            (_, _) if r < 8 => "{not json".to_string(),
            (Protocol::Scratch, 0) => format!(r#"{{"type":"join","sessionId":"s{room}"}}"#),
            (Protocol::Scratch, _) => {
                format!(r#"{{"type":"sync","sessionId":"s{room}","changes":{{"ops":[1,2,3]}}}}"#)
            }
            (Protocol::Signal, 0) => r#"{"type":"create-room"}"#.to_string(),
            (Protocol::Signal, _) => {
                format!(r#"{{"type":"join-room","roomId":"{}"}}"#, 100_000 + room)
            }
            (Protocol::Presence, _) => r#"{"type":"PING"}"#.to_string(),
            (Protocol::Chat, 0) => r#"{"type":"chat","payload":{"text":"hi"}}"#.to_string(),
            (Protocol::Chat, _) => r#"{"type":"typing","payload":{"on":true}}"#.to_string(),
            (Protocol::Stream, 0) => {
                format!(
                    r#"{{"type":"join-room","roomId":"r{}","userId":"u{conn}","userName":"N"}}"#,
                    room % 50
                )
            }
            (Protocol::Stream, 1) => {
                format!(r#"{{"type":"leave-room","roomId":"r{}"}}"#, room % 50)
            }
            (Protocol::Stream, _) => {
                format!(
                    r#"{{"type":"chat-message","roomId":"r{}","userId":"u{conn}","content":"hello"}}"#,
                    room % 50
                )
            }
        };
        text(&mut e, now, conn, msg)
    });
    let per_sec = iterations as f64 / elapsed.as_secs_f64();
    println!(
        "mixed workload, {CONNS} connections over 5 protocols: {iterations} inputs ({outputs} outputs) in {:.2} s = {:.2} M inputs/s ({:.1} M outputs/s)",
        elapsed.as_secs_f64(),
        per_sec / 1e6,
        outputs as f64 / elapsed.as_secs_f64() / 1e6
    );
    if let Err(err) = e.check_invariants() {
        panic!("{err}");
    }
}

fn main() {
    broadcast_in_a_big_room(1_000);
    mixed_workload();
}
