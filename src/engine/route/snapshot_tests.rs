//! Snapshots of routes: for every protocol, a route driven through a
//! history, serialised (serde_json), deserialised, must then produce the
//! same outputs, in the same order, as the original for the same further
//! inputs (joins, messages, leaves, closes, broadcasts to many members).
//!
//! The `rooms` and `users` gauges live in the engine's [`Outbox`], not in
//! the routes: a restored node must rebuild them from its routes (see
//! [`Node::restored`]), or the first room or user to go underflows them.

use super::{Route, State};
use crate::engine::outbox::{Cx, Outbox};
use crate::engine::rng::Rng;
use crate::engine::timers::deadline;
use crate::engine::{ConnId, EngineConfig, Output, ProtocolStats};
use crate::protocol::Protocol;
use crate::protocol::close::CloseReason;
use std::sync::Arc;

/// One input to a route.
#[derive(Clone, Debug)]
enum Step {
    /// A connection opens with a query.
    Open(u64, String),
    /// A text message; `#R<k>` stands for the `k`-th signal room created.
    Text(u64, String),
    /// A connection is gone.
    Close(u64),
    /// Time passes (milliseconds).
    Wait(u64),
}

fn open(conn: u64) -> Step {
    Step::Open(conn, String::new())
}

fn open_as(conn: u64, user: &str) -> Step {
    Step::Open(conn, format!("userId={user}"))
}

fn text(conn: u64, text: impl Into<String>) -> Step {
    Step::Text(conn, text.into())
}

/// What one step did.
#[derive(Debug, PartialEq)]
struct Trace {
    refused: Option<CloseReason>,
    outputs: Vec<Output>,
    stats: ProtocolStats,
}

/// A route with the engine state a handler touches, as one node has it.
struct Node {
    route: Route,
    rng: Rng,
    out: Outbox,
    now: u64,
    /// Test bookkeeping (not route state): the signal room IDs this node
    /// was told of, in creation order.
    created: Vec<String>,
}

impl Node {
    fn new(protocol: Protocol, now: u64) -> Self {
        Node {
            route: Route::new(format!("/{protocol:?}"), protocol),
            rng: Rng::new(0x5eed),
            out: Outbox::new(),
            now,
            created: Vec::new(),
        }
    }

    /// A node loaded from a snapshot of `route` and `rng`: a fresh outbox
    /// whose gauges are rebuilt from the route, as a joining node must.
    fn restored((route, rng): (Route, Rng), like: &Node, config: &EngineConfig) -> Self {
        route.check_restored(config.max_rooms_per_conn).unwrap();
        let mut out = Outbox::new();
        let gauges = &mut out.per_protocol[route.protocol.index()];
        gauges.rooms = route.room_count() as u64;
        gauges.users = route.stats().users;
        Node {
            route,
            rng,
            out,
            now: like.now,
            created: like.created.clone(),
        }
    }

    fn apply(&mut self, step: &Step, config: &EngineConfig) -> Trace {
        let protocol = self.route.protocol;
        let before = self.out.per_protocol[protocol.index()];
        let mut cx = Cx::new(&mut self.out, &mut self.rng, config, self.now, protocol);
        let mut refused = None;
        match step {
            Step::Open(c, query) => refused = self.route.open(ConnId(*c), query, &mut cx).err(),
            Step::Text(c, t) => {
                let mut t = t.clone();
                for (k, id) in self.created.iter().enumerate().rev() {
                    t = t.replace(&format!("#R{k}"), id);
                }
                self.route.text(ConnId(*c), &t, &mut cx);
            }
            Step::Close(c) => self.route.close(ConnId(*c), &mut cx),
            Step::Wait(ms) => self.now += ms,
        }
        let outputs = std::mem::take(&mut self.out.outputs);
        for o in &outputs {
            if let Output::Send { text, .. } = o
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(text)
                && v["type"] == "room-created"
            {
                self.created.push(v["roomId"].as_str().unwrap().to_owned());
            }
        }
        if let Err(e) = self.route.check(config.max_rooms_per_conn) {
            panic!("after {step:?}: {e}");
        }
        let after = self.out.per_protocol[protocol.index()];
        assert_eq!(after.rooms, self.route.room_count() as u64, "{step:?}");
        assert_eq!(after.users, self.route.stats().users, "{step:?}");
        Trace {
            refused,
            outputs,
            // The gauges, and what this step added to the counters.
            stats: ProtocolStats {
                rooms: after.rooms,
                users: after.users,
                messages_out: after.messages_out - before.messages_out,
                bytes_out: after.bytes_out - before.bytes_out,
                errors_sent: after.errors_sent - before.errors_sent,
                ..ProtocolStats::default()
            },
        }
    }

    fn observe(&self, rooms: &[&str]) -> String {
        let r = &self.route;
        let members: Vec<_> = rooms.iter().map(|room| r.members(room)).collect();
        format!(
            "conns {} rooms {} users {:?} members {members:?}",
            r.conn_count(),
            r.room_count(),
            r.online_users()
        )
    }
}

/// The largest number of outputs sharing one broadcast text.
fn widest_broadcast(traces: &[Trace]) -> usize {
    let mut widest = 0;
    for t in traces {
        let mut run: Option<(&Arc<str>, usize)> = None;
        for o in &t.outputs {
            let Output::Send { text, .. } = o else {
                continue;
            };
            run = match run {
                Some((prev, n)) if Arc::ptr_eq(prev, text) => Some((prev, n + 1)),
                _ => Some((text, 1)),
            };
            widest = widest.max(run.map_or(0, |(_, n)| n));
        }
    }
    widest
}

/// Drives a fresh `protocol` route through `history`, snapshots it (with
/// the engine's `Rng`), restores it twice (from the JSON text and through
/// `serde_json::Value`), then checks that the three give identical traces
/// for `further`, in which some broadcast reaches `min_broadcast` members.
fn round_trip(
    protocol: Protocol,
    history: &[Step],
    further: &[Step],
    rooms: &[&str],
    min_broadcast: usize,
) {
    let config = EngineConfig::default();
    let mut original = Node::new(protocol, 1_700_000_000_000);
    for step in history {
        original.apply(step, &config);
    }
    let json = serde_json::to_string(&(&original.route, &original.rng)).unwrap();
    let value = serde_json::to_value((&original.route, &original.rng)).unwrap();
    let mut from_text = Node::restored(serde_json::from_str(&json).unwrap(), &original, &config);
    let mut from_value = Node::restored(serde_json::from_value(value).unwrap(), &original, &config);
    let before = original.observe(rooms);
    assert_eq!(from_text.observe(rooms), before);
    assert_eq!(from_value.observe(rooms), before);

    let mut traces = Vec::new();
    for (i, step) in further.iter().enumerate() {
        let want = original.apply(step, &config);
        assert_eq!(from_text.apply(step, &config), want, "step {i}: {step:?}");
        assert_eq!(from_value.apply(step, &config), want, "step {i}: {step:?}");
        traces.push(want);
    }
    assert_eq!(from_text.observe(rooms), original.observe(rooms));
    let widest = widest_broadcast(&traces);
    assert!(
        widest >= min_broadcast,
        "widest broadcast {widest} < {min_broadcast}: the test lost its point"
    );
}

#[test]
fn scratch_restored_behaves_the_same() {
    let join = |s: &str| format!(r#"{{"type":"join","sessionId":"{s}"}}"#);
    let sync =
        |s: &str, n: u32| format!(r#"{{"type":"sync","sessionId":"{s}","changes":{{"n":{n}}}}}"#);
    let leave = r#"{"type":"leave"}"#;
    let mut history: Vec<Step> = (1..=40).map(open).collect();
    history.extend((1..=30).map(|c| text(c, join("s1"))));
    history.extend((31..=40).map(|c| text(c, join("s2"))));
    history.push(text(5, sync("s1", 1)));
    // Holes in s1's member order (not enough to compact it).
    history.extend([2, 4, 6, 8, 10, 12].map(Step::Close));
    history.push(text(14, leave));
    history.push(text(15, join("s2")));
    history.push(text(33, join("s1")));
    history.push(text(3, "not json"));
    history.push(Step::Wait(5));

    let mut further = vec![
        open(41),
        open(42),
        text(41, join("s1")),
        text(42, join("s2")),
    ];
    further.push(text(1, sync("s1", 2)));
    further.push(text(31, sync("s2", 3)));
    further.push(text(14, leave));
    further.push(text(14, join("s3")));
    further.push(text(14, sync("s1", 4)));
    further.push(text(7, leave));
    further.push(text(9, join("s2")));
    // Enough leaves to compact s1 on one side and not the other.
    further.extend((16..=29).map(Step::Close));
    further.push(text(1, sync("s1", 5)));
    further.push(text(30, join("s1")));
    further.push(text(33, sync("s1", 6)));
    further.extend((31..=40).map(Step::Close));
    further.push(text(15, sync("s2", 7)));
    further.push(Step::Wait(3));
    further.extend((43..=50).map(open));
    further.extend((43..=50).map(|c| text(c, join("s1"))));
    further.push(text(50, sync("s1", 8)));
    further.extend([1, 41, 14, 42].map(Step::Close));
    round_trip(
        Protocol::Scratch,
        &history,
        &further,
        &["s1", "s2", "s3"],
        20,
    );
}

#[test]
fn signal_restored_behaves_the_same() {
    let create = r#"{"type":"create-room"}"#;
    let join = |k: usize| format!(r##"{{"type":"join-room","roomId":"#R{k}"}}"##);
    let relay = |k: usize, n: u32| format!(r##"{{"type":"signal","roomId":"#R{k}","sdp":{n}}}"##);
    let mut history: Vec<Step> = (1..=12).map(open).collect();
    history.extend([
        text(1, create),  // R0
        text(2, join(0)), // 2 joins 1's room
        text(3, create),  // R1
        text(4, create),  // R2
        text(4, join(1)), // 4 is host of R2 and guest of R1
        text(1, relay(0, 1)),
        text(2, relay(0, 2)),
        text(5, create), // R3
        text(6, create), // R4
        Step::Close(3),  // R1 goes, 4 gets peer-left
    ]);
    history.push(text(7, join(0))); // full
    history.push(text(7, "{}"));

    let further = vec![
        text(8, join(3)),
        text(8, relay(3, 3)),
        text(5, relay(3, 4)),
        text(4, relay(2, 5)), // no peer yet
        text(9, create),      // R5: the restored Rng must draw the same ID
        text(10, join(5)),
        text(11, join(5)), // full
        text(1, create),   // R6
        text(1, create),   // R7
        text(12, join(7)),
        text(12, join(2)),
        text(4, relay(2, 6)),
        Step::Close(1), // R0, R6, R7 go: 2 and 12 told, in 1's order
        Step::Close(5),
        text(8, relay(3, 7)),
        Step::Close(4),
        text(12, relay(2, 8)),
        Step::Close(10),
        text(9, relay(5, 9)),
    ];
    round_trip(Protocol::Signal, &history, &further, &["#unused"], 1);
}

#[test]
fn presence_restored_behaves_the_same() {
    let ping = r#"{"type":"PING"}"#;
    let mut history = Vec::new();
    for c in 1..=30u64 {
        history.push(open_as(c, &format!("u{}", c % 12)));
        if c % 4 == 0 {
            history.push(Step::Wait(1));
        }
    }
    // Same user, same millisecond: connection IDs `u1-T`, `u1-T-2`, ...
    history.extend([open_as(31, "u1"), open_as(32, "u1"), open_as(33, "u1")]);
    history.push(Step::Open(34, "userId=".into())); // refused
    history.push(text(5, ping));
    history.push(text(6, "nope"));
    // u3 goes offline (conns 3, 15, 27), u4 loses one of three.
    history.extend([3, 15, 27, 4].map(Step::Close));
    history.push(Step::Wait(2));

    let mut further = vec![open_as(40, "newcomer"), open_as(41, "u3")];
    further.extend([open_as(42, "u1"), open_as(43, "u1")]); // same ms again
    further.push(text(40, ping));
    further.push(Step::Open(44, "x=1".into()));
    further.extend([1, 13, 25, 31, 32, 33, 42].map(Step::Close)); // u1 left on 43
    further.push(Step::Close(43)); // u1 offline, broadcast to all
    further.push(Step::Wait(10));
    further.extend((50..=60).map(|c| open_as(c, &format!("late{}", c % 3))));
    further.extend([2, 14, 26, 40].map(Step::Close));
    further.push(text(55, "{}"));
    round_trip(
        Protocol::Presence,
        &history,
        &further,
        &["u1", "u2", "u3", "u4", "newcomer"],
        20,
    );
}

#[test]
fn chat_restored_behaves_the_same() {
    let say = |n: u32| format!(r#"{{"type":"chat","payload":{{"n":{n}}}}}"#);
    let mut history: Vec<Step> = (1..=40).map(open).collect();
    history.push(text(1, say(1)));
    history.extend([3, 9, 27, 28].map(Step::Close));
    history.push(Step::Wait(4));
    history.push(text(2, r#"{"type":"ping"}"#));
    history.push(text(2, r#"{"type":"whatever","payload":[1]}"#));
    history.push(text(2, "]["));

    let mut further = vec![text(5, say(2)), open(41), text(41, say(3))];
    further.extend((10..=26).map(Step::Close)); // compacts on one side only
    further.push(text(40, say(4)));
    further.push(text(6, r#"{"type":"auth","payload":null}"#));
    further.push(Step::Wait(1));
    further.extend((42..=60).map(open));
    further.push(text(60, say(5)));
    further.push(text(7, "{"));
    round_trip(Protocol::Chat, &history, &further, &[], 20);
}

#[test]
fn stream_restored_behaves_the_same() {
    let join = |r: &str, u: &str| {
        format!(r#"{{"type":"join-room","roomId":"{r}","userId":"{u}","userName":"N {u}"}}"#)
    };
    let chat = |r: &str, u: &str, m: u32| {
        format!(r#"{{"type":"chat-message","roomId":"{r}","userId":"{u}","content":"m{m}"}}"#)
    };
    let streaming = |on: bool, r: &str, u: &str| {
        let ty = if on { "start" } else { "stop" };
        format!(r#"{{"type":"{ty}-streaming","roomId":"{r}","userId":"{u}"}}"#)
    };
    let leave = |r: &str| format!(r#"{{"type":"leave-room","roomId":"{r}"}}"#);
    let mut history: Vec<Step> = (1..=36).map(open).collect();
    history.extend((1..=30).map(|c| text(c, join("r1", &format!("p{c}")))));
    history.extend((25..=36).map(|c| text(c, join("r2", &format!("q{c}")))));
    history.push(text(4, streaming(true, "r1", "p4")));
    history.push(text(5, chat("r1", "p5", 1)));
    history.extend([2, 7, 11].map(Step::Close));
    history.push(text(12, leave("r1")));
    history.push(text(36, join("r1", "p3"))); // takeover of p3 from conn 3
    history.push(text(13, chat("r1", "p99", 2))); // wrong userId
    history.push(Step::Wait(9));

    let mut further = vec![
        text(1, chat("r1", "p1", 3)),
        text(25, chat("r2", "q25", 4)),
        text(12, join("r1", "p12")),
        text(3, join("r1", "p3")), // takes p3 back
        text(36, streaming(true, "r1", "p3")),
        text(4, streaming(false, "r1", "p4")),
        text(8, leave("r3")),
    ];
    further.extend((14..=24).map(Step::Close));
    further.push(text(30, chat("r1", "p30", 5)));
    further.extend((26..=29).map(|c| text(c, leave("r2"))));
    further.push(text(31, chat("r2", "q31", 6)));
    further.push(Step::Wait(1));
    further.extend((37..=45).map(open));
    further.extend((37..=45).map(|c| text(c, join("r1", &format!("late{c}")))));
    further.push(text(45, chat("r1", "late45", 7)));
    further.extend([1, 30, 36].map(Step::Close));
    further.push(text(40, chat("r1", "late40", 8)));
    round_trip(
        Protocol::Stream,
        &history,
        &further,
        &["r1", "r2", "r3"],
        20,
    );
}

#[test]
fn conn_keyed_maps_round_trip_through_json() {
    // `ConnId` keys become JSON strings; they must come back as ids.
    let config = EngineConfig::default();
    let mut node = Node::new(Protocol::Stream, 0);
    for c in [0, 7, u64::MAX] {
        node.apply(&open(c), &config);
        node.apply(
            &text(
                c,
                format!(r#"{{"type":"join-room","roomId":"r","userId":"{c}","userName":""}}"#),
            ),
            &config,
        );
    }
    let json = serde_json::to_string(&node.route).unwrap();
    let back: Route = serde_json::from_str(&json).unwrap();
    back.check_restored(config.max_rooms_per_conn).unwrap();
    for c in [0, 7, u64::MAX] {
        assert!(back.has_conn(ConnId(c)), "{c} lost in {json}");
    }
    assert_eq!(back.members("r"), node.route.members("r"));
}

#[test]
fn a_route_whose_state_is_another_protocols_is_refused() {
    let mut route = Route::new("/p".into(), Protocol::Presence);
    route.state = State::Chat(Default::default());
    let json = serde_json::to_string(&route).unwrap();
    let back: Route = serde_json::from_str(&json).unwrap();
    assert!(back.check_restored(32).is_err());
}

#[test]
fn restored_presence_keeps_its_stats_schedule() {
    let config = EngineConfig::default();
    let interval = config.presence_stats_interval_ms;
    let mut node = Node::new(Protocol::Presence, 1_000_000);
    node.apply(&open_as(1, "a"), &config);
    let scheduled = node.route.next_timeout(&config).unwrap();
    assert_eq!(scheduled, deadline(&config, 1_000_000, interval));
    let json = serde_json::to_string(&node.route).unwrap();
    let mut back: Route = serde_json::from_str(&json).unwrap();
    assert_eq!(back.next_timeout(&config), Some(scheduled));
    back.timeout(&config, scheduled);
    assert_eq!(
        back.next_timeout(&config),
        Some(deadline(&config, scheduled, interval))
    );
    // Without connections nothing is scheduled, restored or not.
    let empty: Route = serde_json::from_str(
        &serde_json::to_string(&Route::new("/q".into(), Protocol::Presence)).unwrap(),
    )
    .unwrap();
    assert_eq!(empty.next_timeout(&config), None);
}
