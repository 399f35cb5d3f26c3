//! What the driver checks after every step: each output against the
//! model's expectation, then the engine's state against the model's.

use super::driver::Driver;
use super::model::{Model, RoomKey, RouteModel};
use crate::engine::{ConnId, Output};
use crate::protocol::Protocol;
use std::collections::{BTreeMap, BTreeSet};

/// Close codes the engine may use (PROTOCOLS.md).
const CLOSE_CODES: [u16; 8] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011];

fn target(output: &Output) -> ConnId {
    match output {
        Output::Send { conn, .. }
        | Output::Ping { conn }
        | Output::Close { conn, .. }
        | Output::Terminate { conn } => *conn,
        Output::Bus { .. } => unreachable!("no cluster mode in the model"),
    }
}

/// The route holding `conn` before or after the step.
fn route_of(model: &Model, conn: ConnId) -> Option<&RouteModel> {
    let before = model.expect.before.iter();
    let mut all = before.chain(&model.routes);
    all.find(|r| r.conns.contains(&conn))
}

impl Driver {
    /// Checks one step's outputs; returns the connections they closed.
    pub(super) fn check_outputs(&mut self, model: &Model, outputs: &[Output]) -> Vec<ConnId> {
        let e = &model.expect;
        let mut closes = BTreeMap::new();
        let (mut terminates, mut pings) = (BTreeSet::new(), BTreeSet::new());
        for output in outputs {
            let conn = target(output);
            assert!(e.targets.contains(&conn), "not live: {output:?}");
            assert!(
                !closes.contains_key(&conn) && !terminates.contains(&conn),
                "output after close: {output:?}"
            );
            match output {
                Output::Send { text, .. } => {
                    assert!(e.hear.contains(&conn), "{conn:?} may not hear: {text}");
                    self.check_send(model, conn, text);
                }
                Output::Ping { .. } => _ = pings.insert(conn),
                Output::Close { reason, .. } => {
                    let code = reason.code();
                    assert!(
                        CLOSE_CODES.contains(&code),
                        "unknown close code: {output:?}"
                    );
                    closes.insert(conn, code);
                }
                Output::Terminate { .. } => _ = terminates.insert(conn),
                Output::Bus { .. } => {}
            }
        }
        assert_eq!(closes, e.closes, "closes");
        assert_eq!(terminates, e.terminates, "terminations");
        assert_eq!(pings, e.pings, "pings");
        if let Some(conn) = e.one_send_to {
            let one = matches!(outputs, [Output::Send { conn: c, .. }] if *c == conn);
            assert!(one, "one message to {conn:?} expected: {outputs:?}");
        }
        closes.into_keys().chain(terminates).collect()
    }

    /// A sent text: a JSON object with a string `type`, on the sender's
    /// route; naming a room (`roomId`, `sessionId`), it goes to a member
    /// of that room (before or after the step) unless it is the leaver's
    /// own `left`/`peer-left` or an error.
    fn check_send(&mut self, model: &Model, conn: ConnId, text: &str) {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            // Valid JSON that serde_json cannot hold as a Value (a number
            // beyond f64 such as 3e30330, forwarded verbatim as the
            // protocol says) is fine; anything else is not.
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
                panic!("sent text is not JSON ({e}): {text}");
            }
            return;
        };
        let Some(kind) = value.get("type").and_then(|t| t.as_str()) else {
            panic!("sent message without a string type: {text}");
        };
        let Some(route) = route_of(model, conn) else {
            panic!("{conn:?} is on no route: {text}");
        };
        let index = model.routes.iter().position(|r| r.path == route.path);
        let index = index.unwrap_or_default();
        if let Some(sender) = model.expect.route {
            assert_eq!(index, sender, "{conn:?} is on another route: {text}");
        }
        if kind == "room-created" && conn == model.expect.one_send_to.unwrap_or(conn) {
            let id = value.get("roomId").and_then(|r| r.as_str());
            self.ids[index].push(id.unwrap_or_default().to_string());
        }
        let room = ["roomId", "sessionId"]
            .into_iter()
            .find_map(|k| value.get(k).and_then(|r| r.as_str()));
        let Some(room) = room.filter(|_| !matches!(kind, "left" | "peer-left" | "error")) else {
            return;
        };
        let key = match route.protocol {
            // IDs are unique among live rooms only: the latest is the one.
            Protocol::Signal => match self.ids[index].iter().rposition(|id| id == room) {
                Some(n) => RoomKey::Signal(n),
                None => panic!("{conn:?} got a message for an unknown room: {text}"),
            },
            _ => RoomKey::Name(room),
        };
        let before = model.expect.before.iter().filter(|r| r.path == route.path);
        let mut members = before.flat_map(|r| r.members(key));
        let member = members.any(|c| c == conn) || model.routes[index].members(key).contains(&conn);
        assert!(
            member,
            "{conn:?} got a message for room {room:?} it is not in: {text}"
        );
    }

    /// The engine's own invariants hold and its state is the model's:
    /// connections, rooms, and every room's, session's and user's members
    /// in order; the `signal` rooms it created are the ones the model
    /// expected.
    pub(super) fn check_state(&self, model: &Model) {
        let e = &self.engine;
        if let Err(err) = e.check_invariants() {
            panic!("engine invariants broken: {err}");
        }
        assert_eq!(e.connection_count(), model.conns.len(), "connections");
        // Timers as data: something is due exactly while a connection is
        // open (heartbeats, and presence stats only while it has some).
        assert_eq!(
            e.poll_timeout().is_some(),
            !model.conns.is_empty(),
            "a deadline exactly while connections are open"
        );
        let rooms: usize = model.routes.iter().map(RouteModel::room_count).sum();
        assert_eq!(e.room_count(), rooms, "rooms");
        for (r, ids) in model.routes.iter().zip(&self.ids) {
            let path = r.path;
            assert_eq!(ids.len(), r.signal.len(), "{path}: rooms created");
            let some = |v: Vec<ConnId>| (!v.is_empty()).then_some(v);
            let names = r.sessions.keys().chain(r.stream.keys());
            for name in names.chain(r.users.iter().map(|(u, _)| u)) {
                let expected = some(r.members(RoomKey::Name(name)));
                assert_eq!(e.members(path, name), expected, "{path} {name:?}");
            }
            // An ID given again to a later room names that room.
            let latest: BTreeMap<&String, usize> = ids.iter().zip(0..).collect();
            for (id, n) in latest {
                let expected = some(r.members(RoomKey::Signal(n)));
                assert_eq!(e.members(path, id), expected, "{path} {id}");
            }
            if r.protocol == Protocol::Chat {
                let expected = r.used.then(|| r.conns.clone());
                assert_eq!(e.members(path, ""), expected, "{path}");
            }
            let users: Vec<&String> = r.users.iter().map(|(u, _)| u).collect();
            assert_eq!(e.online_users(path).iter().collect::<Vec<_>>(), users);
        }
    }
}
