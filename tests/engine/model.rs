//! Model-based property test: random opens, messages (valid and
//! malformed), pongs, binary frames, closes and timeouts across many
//! connections, every protocol and two routes per protocol, checked
//! against a reference model of membership after every step.
//!
//! Properties: no panic; `check_invariants()` holds; every room's members
//! are exactly the model's; no message reaches a connection outside the
//! sender's route and rooms; after every connection closes no room and no
//! online user remains; two engines with the same seed emit the same
//! outputs; `poll_timeout` names a deadline exactly while connections are
//! open, and none at or before the time of a timeout just handled.

use proptest::prelude::*;
use roomd::engine::{ConnId, Engine, EngineConfig, Input, Output};
use roomd::protocol::Protocol;
use roomd::protocol::close::CloseReason;
use std::collections::{BTreeMap, BTreeSet};

const T0: u64 = 1_704_110_400_000;
const MAX_ROOMS: usize = 2;

#[derive(Clone, Debug)]
enum Op {
    Open {
        proto: usize,
        second_route: bool,
        user: u8,
    },
    Text {
        who: usize,
        kind: u8,
        a: u8,
        b: u8,
    },
    Garbage {
        who: usize,
        text: String,
    },
    Binary {
        who: usize,
    },
    Pong {
        who: usize,
    },
    Close {
        who: usize,
    },
    Timeout {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..5usize, any::<bool>(), 0..5u8)
            .prop_map(|(proto, second_route, user)| Op::Open { proto, second_route, user }),
        10 => (any::<usize>(), 0..12u8, 0..3u8, 0..3u8)
            .prop_map(|(who, kind, a, b)| Op::Text { who, kind, a, b }),
        1 => (any::<usize>(), "[\\[\\]{}\":,a-z0-9 ]{0,16}")
            .prop_map(|(who, text)| Op::Garbage { who, text }),
        1 => any::<usize>().prop_map(|who| Op::Binary { who }),
        2 => any::<usize>().prop_map(|who| Op::Pong { who }),
        2 => any::<usize>().prop_map(|who| Op::Close { who }),
        2 => prop_oneof![0..40_000u64, 0..600u64].prop_map(|ms| Op::Timeout { ms }),
    ]
}

/// The reference model: who is where, in joining order.
#[derive(Default, Debug)]
struct Model {
    conns: BTreeMap<u64, (Protocol, String)>,
    scratch: BTreeMap<(String, String), Vec<u64>>,
    stream: BTreeMap<(String, String), Vec<(String, u64)>>,
    signal: BTreeMap<(String, String), (u64, Option<u64>)>,
    chat: BTreeMap<String, Vec<u64>>,
    presence: BTreeMap<String, Vec<(String, Vec<u64>)>>,
    /// Signal room IDs seen so far per path (live or not).
    signal_ids: BTreeMap<String, Vec<String>>,
}

impl Model {
    /// The connections sharing a room (or a route, for chat) with `conn`.
    fn peers(&self, conn: u64) -> BTreeSet<u64> {
        let mut out = BTreeSet::new();
        for m in self.scratch.values().filter(|m| m.contains(&conn)) {
            out.extend(m);
        }
        for m in self
            .stream
            .values()
            .filter(|m| m.iter().any(|(_, c)| *c == conn))
        {
            out.extend(m.iter().map(|(_, c)| *c));
        }
        for (h, g) in self
            .signal
            .values()
            .filter(|(h, g)| *h == conn || *g == Some(conn))
        {
            out.insert(*h);
            out.extend(*g);
        }
        out
    }

    fn scratch_session(&self, path: &str, conn: u64) -> Option<String> {
        self.scratch
            .iter()
            .find(|((p, _), m)| p == path && m.contains(&conn))
            .map(|((_, s), _)| s.clone())
    }

    fn stream_rooms(&self, path: &str, conn: u64) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for ((p, r), m) in &self.stream {
            if let Some((u, _)) = m.iter().find(|(_, c)| *c == conn).filter(|_| p == path) {
                out.push((r.clone(), u.clone()));
            }
        }
        out
    }

    fn signal_rooms(&self, path: &str, conn: u64) -> usize {
        self.signal
            .iter()
            .filter(|((p, _), (h, g))| p == path && (*h == conn || *g == Some(conn)))
            .count()
    }

    fn stream_leave(&mut self, path: &str, room: &str, conn: u64) {
        let key = (path.to_string(), room.to_string());
        if let Some(m) = self.stream.get_mut(&key) {
            m.retain(|(_, c)| *c != conn);
            if m.is_empty() {
                self.stream.remove(&key);
            }
        }
    }

    fn close(&mut self, conn: u64) {
        let Some((_, path)) = self.conns.remove(&conn) else {
            return;
        };
        self.scratch
            .values_mut()
            .for_each(|m| m.retain(|c| *c != conn));
        self.scratch.retain(|_, m| !m.is_empty());
        self.stream
            .values_mut()
            .for_each(|m| m.retain(|(_, c)| *c != conn));
        self.stream.retain(|_, m| !m.is_empty());
        self.signal
            .retain(|_, (h, g)| *h != conn && *g != Some(conn));
        if let Some(m) = self.chat.get_mut(&path) {
            m.retain(|c| *c != conn);
        }
        if let Some(users) = self.presence.get_mut(&path) {
            users
                .iter_mut()
                .for_each(|(_, cs)| cs.retain(|c| *c != conn));
            users.retain(|(_, cs)| !cs.is_empty());
        }
    }
}

const ROOMS: [&str; 3] = ["a", "b", "c"];
const USERS: [&str; 4] = ["1", "2", "bob", "0042"];

/// Renders message `kind` for `proto`, updating the model for the valid
/// ones. Returns the text and the room it joins, if any (whose previous
/// members may hear of a takeover).
fn render(m: &mut Model, conn: u64, kind: u8, a: u8, b: u8) -> (String, Option<String>) {
    let (proto, path) = m.conns[&conn].clone();
    let room = ROOMS[a as usize % 3];
    let user = USERS[b as usize % 4];
    let text = match kind {
        0 => "not json".into(),
        1 => "[1]".into(),
        2 => r#"{"type":5}"#.into(),
        3 => r#"{"type":"zzz"}"#.into(),
        _ => String::new(),
    };
    if !text.is_empty() {
        return (text, None);
    }
    match proto {
        Protocol::Scratch => match kind % 4 {
            0 => {
                m.close_scratch(&path, conn);
                m.scratch.entry((path, room.into())).or_default().push(conn);
                (format!(r#"{{"type":"join","sessionId":"{room}"}}"#), None)
            }
            1 => {
                m.close_scratch(&path, conn);
                (r#"{"type":"leave"}"#.into(), None)
            }
            2 => (
                format!(r#"{{"type":"sync","sessionId":"{room}","changes":{{"k":[{a},{b}]}}}}"#),
                None,
            ),
            _ => (r#"{"type":"join","sessionId":""}"#.into(), None),
        },
        Protocol::Signal => {
            let ids = m.signal_ids.get(&path).cloned().unwrap_or_default();
            let known = if ids.is_empty() {
                "000000".to_string()
            } else {
                ids[(a as usize * 7 + b as usize) % ids.len()].clone()
            };
            match kind % 4 {
                0 => (r#"{"type":"create-room"}"#.into(), None),
                1 => {
                    let key = (path.clone(), known.clone());
                    let free = m.signal_rooms(&path, conn) < MAX_ROOMS;
                    if let Some((h, g)) = m.signal.get_mut(&key)
                        && g.is_none()
                        && *h != conn
                        && free
                    {
                        *g = Some(conn);
                    }
                    (
                        format!(r#"{{"type":"join-room","roomId":"{known}"}}"#),
                        None,
                    )
                }
                2 => (
                    format!(r#"{{"type":"signal","roomId":"{known}","sdp":{{"x":{a}}}}}"#),
                    None,
                ),
                _ => (
                    format!(r#"{{"type":"chat-message","roomId":"{known}","message":"m{b}"}}"#),
                    None,
                ),
            }
        }
        Protocol::Presence => match kind % 2 {
            0 => (r#"{"type":"PING"}"#.into(), None),
            _ => (r#"{"type":"USER_ONLINE"}"#.into(), None),
        },
        Protocol::Chat => match kind % 4 {
            0 => (format!(r#"{{"type":"chat","payload":{{"n":{a}}}}}"#), None),
            1 => (r#"{"type":"ping"}"#.into(), None),
            2 => (r#"{"type":"auth","payload":null}"#.into(), None),
            _ => (format!(r#"{{"type":"echo{a}","payload":[{b}]}}"#), None),
        },
        Protocol::Stream => match kind % 4 {
            0 => {
                let mine = m.stream_rooms(&path, conn);
                if mine.iter().any(|(r, _)| r == room) {
                    m.stream_leave(&path, room, conn);
                }
                if m.stream_rooms(&path, conn).len() < MAX_ROOMS {
                    let members = m.stream.entry((path.clone(), room.into())).or_default();
                    match members.iter_mut().find(|(u, _)| u == user) {
                        Some(entry) => entry.1 = conn,
                        None => members.push((user.into(), conn)),
                    }
                }
                let text = format!(
                    r#"{{"type":"join-room","roomId":"{room}","userId":"{user}","userName":"N{b}"}}"#
                );
                (text, Some(room.to_string()))
            }
            1 => {
                m.stream_leave(&path, room, conn);
                (
                    format!(r#"{{"type":"leave-room","roomId":"{room}"}}"#),
                    None,
                )
            }
            2 => (
                format!(
                    r#"{{"type":"chat-message","roomId":"{room}","userId":"{user}","content":"c"}}"#
                ),
                None,
            ),
            _ => {
                let ty = if a.is_multiple_of(2) {
                    "start-streaming"
                } else {
                    "stop-streaming"
                };
                (
                    format!(r#"{{"type":"{ty}","roomId":"{room}","userId":"{user}"}}"#),
                    None,
                )
            }
        },
    }
}

impl Model {
    fn close_scratch(&mut self, path: &str, conn: u64) {
        if let Some(s) = self.scratch_session(path, conn) {
            let key = (path.to_string(), s);
            if let Some(m) = self.scratch.get_mut(&key) {
                m.retain(|c| *c != conn);
                if m.is_empty() {
                    self.scratch.remove(&key);
                }
            }
        }
    }
}

/// Compares the engine's membership with the model's.
fn compare(e: &Engine, m: &Model) -> Result<(), TestCaseError> {
    e.check_invariants().map_err(TestCaseError::fail)?;
    prop_assert_eq!(e.connection_count(), m.conns.len());
    let paths: BTreeSet<&String> = m.conns.values().map(|(_, p)| p).collect();
    for path in paths {
        for room in ROOMS {
            let key = (path.clone(), room.to_string());
            let scratch = m.scratch.get(&key).cloned();
            let stream = m
                .stream
                .get(&key)
                .map(|v| v.iter().map(|(_, c)| *c).collect::<Vec<_>>());
            let expected = scratch
                .or(stream)
                .map(|v| v.into_iter().map(ConnId).collect::<Vec<_>>());
            if path.contains("scratch") || path.contains("stream") {
                prop_assert_eq!(e.members(path, room), expected, "{} {}", path, room);
            }
        }
        for id in m.signal_ids.get(path).into_iter().flatten() {
            let expected = m.signal.get(&(path.clone(), id.clone())).map(|(h, g)| {
                std::iter::once(ConnId(*h))
                    .chain(g.map(ConnId))
                    .collect::<Vec<_>>()
            });
            prop_assert_eq!(e.members(path, id), expected);
        }
        if let Some(conns) = m.chat.get(path) {
            prop_assert_eq!(
                e.members(path, ""),
                Some(conns.iter().map(|c| ConnId(*c)).collect())
            );
        }
        if let Some(users) = m.presence.get(path) {
            let names: Vec<String> = users.iter().map(|(u, _)| u.clone()).collect();
            prop_assert_eq!(e.online_users(path), names);
            for (u, cs) in users {
                prop_assert_eq!(
                    e.members(path, u),
                    Some(cs.iter().map(|c| ConnId(*c)).collect())
                );
            }
        }
    }
    let rooms = m.scratch.len() + m.stream.len() + m.signal.len();
    prop_assert_eq!(e.room_count(), rooms);
    Ok(())
}

fn recipient(o: &Output) -> u64 {
    match o {
        Output::Send { conn, .. }
        | Output::Ping { conn }
        | Output::Close { conn, .. }
        | Output::Terminate { conn } => conn.0,
    }
}

/// Runs `ops`. With `rate_limited`, a tight rate limit refuses messages
/// the model does not know about, so only the properties that do not
/// depend on membership are checked (invariants, routes, determinism,
/// nothing left at the end).
fn run(ops: Vec<Op>, seed: u64, rate_limited: bool) -> Result<(), TestCaseError> {
    let config = EngineConfig {
        max_rooms_per_conn: MAX_ROOMS,
        rate_limit_per_sec: if rate_limited { 1 } else { 0 },
        rate_limit_burst: 1,
        rate_limit_close_after_ms: 300,
        ..EngineConfig::default()
    };
    let (mut e, mut twin) = (Engine::new(config.clone(), seed), Engine::new(config, seed));
    let mut m = Model::default();
    let mut now = T0;
    let mut ever: Vec<u64> = Vec::new();
    let pick = |ever: &Vec<u64>, who: usize| (!ever.is_empty()).then(|| ever[who % ever.len()]);

    for op in ops {
        // The actor, its peers and route before the step, and the previous
        // members of a stream room it joins (who may hear of a takeover).
        let mut actor: Option<(u64, BTreeSet<u64>, Protocol, String)> = None;
        let mut takeover = BTreeSet::new();
        let snap = |m: &Model, conn: u64| {
            m.conns
                .get(&conn)
                .map(|(p, path)| (conn, m.peers(conn), *p, path.clone()))
        };
        let input = match op.clone() {
            Op::Open {
                proto,
                second_route,
                user,
            } => {
                let protocol = Protocol::ALL[proto];
                let path = format!(
                    "/{}{}",
                    protocol.name(),
                    if second_route { "-2" } else { "" }
                );
                let conn = ever.len() as u64 + 1;
                ever.push(conn);
                // User 4: no `userId`, which presence refuses.
                let refused = protocol == Protocol::Presence && user == 4;
                let query = match USERS.get(user as usize) {
                    Some(user) => format!("userId={user}"),
                    None => "x=1".to_string(),
                };
                let user = USERS.get(user as usize).copied().unwrap_or_default();
                if !refused {
                    m.conns.insert(conn, (protocol, path.clone()));
                }
                match protocol {
                    _ if refused => {}
                    Protocol::Chat => m.chat.entry(path.clone()).or_default().push(conn),
                    Protocol::Presence => {
                        let users = m.presence.entry(path.clone()).or_default();
                        match users.iter_mut().find(|(u, _)| u == user) {
                            Some((_, cs)) => cs.push(conn),
                            None => users.push((user.to_string(), vec![conn])),
                        }
                    }
                    _ => {}
                }
                actor = snap(&m, conn);
                Input::Open {
                    conn: ConnId(conn),
                    protocol,
                    path,
                    query,
                    peer: None,
                }
            }
            Op::Text { who, kind, a, b } => {
                let Some(conn) = pick(&ever, who) else {
                    continue;
                };
                actor = snap(&m, conn);
                let text = match &actor {
                    Some((_, _, _, path)) => {
                        let stream_before = m.stream.clone();
                        let (text, room) = render(&mut m, conn, kind, a, b);
                        if let Some(room) = room {
                            let key = (path.clone(), room);
                            takeover.extend(
                                stream_before
                                    .get(&key)
                                    .into_iter()
                                    .flatten()
                                    .map(|(_, c)| *c),
                            );
                        }
                        text
                    }
                    None => r#"{"type":"ping"}"#.to_string(),
                };
                Input::Text {
                    conn: ConnId(conn),
                    text,
                }
            }
            Op::Garbage { who, text } => {
                let Some(conn) = pick(&ever, who) else {
                    continue;
                };
                actor = snap(&m, conn);
                Input::Text {
                    conn: ConnId(conn),
                    text,
                }
            }
            Op::Binary { who } => {
                let Some(conn) = pick(&ever, who) else {
                    continue;
                };
                actor = snap(&m, conn);
                Input::Binary {
                    conn: ConnId(conn),
                    len: 4,
                }
            }
            Op::Pong { who } => {
                let Some(conn) = pick(&ever, who) else {
                    continue;
                };
                Input::Pong { conn: ConnId(conn) }
            }
            Op::Close { who } => {
                let Some(conn) = pick(&ever, who) else {
                    continue;
                };
                actor = snap(&m, conn);
                Input::Closed { conn: ConnId(conn) }
            }
            Op::Timeout { ms } => {
                now += ms;
                Input::Timeout
            }
        };
        e.handle(now, input.clone());
        twin.handle(now, input.clone());
        let outs: Vec<Output> = e.drain_outputs().collect();
        let twin_outs: Vec<Output> = twin.drain_outputs().collect();
        prop_assert_eq!(&outs, &twin_outs, "same seed, same outputs");

        // Apply peer and engine-decided closes; learn new signal room IDs.
        if let Input::Closed { conn } = input {
            m.close(conn.0);
        }
        for o in &outs {
            match o {
                Output::Close { conn, reason } => {
                    let opening = matches!(op, Op::Open { .. });
                    let expected = match reason {
                        CloseReason::InvalidUserId(_) => opening,
                        CloseReason::Binary => matches!(op, Op::Binary { .. }),
                        CloseReason::RateLimited => rate_limited && !opening,
                        _ => false,
                    };
                    prop_assert!(
                        expected,
                        "only binary frames, refused opens and floods close: {:?}",
                        o
                    );
                    prop_assert!(!opening || !m.conns.contains_key(&conn.0));
                    m.close(conn.0)
                }
                Output::Terminate { conn } => m.close(conn.0),
                Output::Send { conn, text } if text.contains(r#""type":"room-created""#) => {
                    let v: serde_json::Value = serde_json::from_str(text).unwrap();
                    let id = v["roomId"].as_str().unwrap().to_string();
                    let path = m.conns[&conn.0].1.clone();
                    m.signal.insert((path.clone(), id.clone()), (conn.0, None));
                    m.signal_ids.entry(path).or_default().push(id);
                }
                _ => {}
            }
        }
        // No message crosses a route, or reaches a connection sharing no
        // room with the actor (chat and presence opens/closes are
        // route-wide).
        if let Some((a, before, proto, path)) = actor {
            let after = m.peers(a);
            let route: BTreeSet<u64> = ever
                .iter()
                .copied()
                .filter(|c| m.conns.get(c).is_some_and(|(_, p)| *p == path) || before.contains(c))
                .collect();
            let route_wide = proto == Protocol::Chat
                || (proto == Protocol::Presence
                    && !matches!(op, Op::Text { .. } | Op::Garbage { .. }));
            for o in outs.iter().filter(|o| matches!(o, Output::Send { .. })) {
                let r = recipient(o);
                if r == a {
                    continue;
                }
                prop_assert!(route.contains(&r), "{:?} crossed routes after {:?}", o, op);
                prop_assert!(
                    rate_limited
                        || route_wide
                        || before.contains(&r)
                        || after.contains(&r)
                        || takeover.contains(&r),
                    "{:?} reached a non-peer after {:?}",
                    o,
                    op
                );
            }
        }
        // Heartbeats are on: a deadline exactly while connections are
        // open, and a timeout leaves none at or before its time.
        let next = e.poll_timeout();
        prop_assert_eq!(next.is_some(), !m.conns.is_empty(), "deadline {:?}", next);
        if matches!(op, Op::Timeout { .. }) {
            prop_assert!(
                next.is_none_or(|t| t > now),
                "{:?} still due at {}",
                next,
                now
            );
        }
        if rate_limited {
            e.check_invariants().map_err(TestCaseError::fail)?;
            prop_assert_eq!(e.connection_count(), m.conns.len());
        } else {
            compare(&e, &m)?;
        }
    }

    // Everyone leaves: nothing remains.
    for conn in m.conns.keys().copied().collect::<Vec<_>>() {
        e.handle(now, Input::Closed { conn: ConnId(conn) });
        m.close(conn);
    }
    e.drain_outputs().for_each(drop);
    compare(&e, &m)?;
    prop_assert_eq!(e.poll_timeout(), None);
    prop_assert_eq!(e.connection_count(), 0);
    prop_assert_eq!(e.room_count(), 0);
    for p in Protocol::ALL {
        let s = e.stats();
        let s = s.of(p);
        prop_assert_eq!((s.connections, s.rooms, s.users), (0, 0, 0));
        for path in [format!("/{p}"), format!("/{p}-2")] {
            prop_assert!(e.online_users(&path).is_empty());
        }
    }
    Ok(())
}

/// 128 cases keep `cargo test` fast; `PROPTEST_CASES=N` runs more.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_the_model(ops in prop::collection::vec(op(), 1..160), seed in any::<u64>()) {
        run(ops, seed, false)?;
    }

    #[test]
    fn rate_limited_engine_keeps_its_invariants(
        ops in prop::collection::vec(op(), 1..160),
        seed in any::<u64>(),
    ) {
        run(ops, seed, true)?;
    }
}
