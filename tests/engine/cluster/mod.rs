//! Cluster mode's engine side, without Redis: several engines joined by an
//! in-process model of Redis ([`bus`]), any interleaving of commands,
//! replies and messages. What must hold (CLUSTER.md): every client sees
//! exactly what it would see from one engine fed the same operations in
//! the order Redis numbered them; the replicas hold the same rooms,
//! members and online users as that engine; a dead node's connections
//! leave as if they had closed; a paused node comes back fenced.

mod bus;

use crate::common::ROUTES;
use bus::Cluster;
use proptest::prelude::*;
use roomd::engine::cluster::{Event, global, local_of, node_of};
use roomd::engine::{
    BusInput, BusReply, ClusterPolicy, ConnId, Engine, EngineConfig, Input, Output,
};
use roomd::fuzzing::templates::{Context, NAMES, template};
use roomd::protocol::Protocol;
use std::collections::BTreeMap;

const TIMEOUT_MS: u64 = 2_000;
const SEED: u64 = 77;

fn config(cluster: bool) -> EngineConfig {
    EngineConfig {
        heartbeat_interval_ms: 600_000,
        rate_limit_per_sec: 0,
        cluster: cluster.then_some(ClusterPolicy {
            node_timeout_ms: TIMEOUT_MS,
        }),
        ..EngineConfig::default()
    }
}

/// A client: its node, its id there, and its route.
#[derive(Clone, Copy, Debug)]
struct Client {
    node: usize,
    conn: ConnId,
    route: usize,
}

/// The test's world: the cluster, its clients, the time.
struct World {
    cluster: Cluster,
    clients: Vec<Client>,
    next_conn: u64,
    now: u64,
}

impl World {
    fn new(nodes: usize) -> World {
        let mut w = World {
            cluster: Cluster::new(TIMEOUT_MS),
            clients: Vec::new(),
            next_conn: 1,
            now: 1_000_000,
        };
        for _ in 0..nodes {
            w.add_node();
        }
        w
    }

    fn add_node(&mut self) {
        self.cluster.add(Engine::new(config(true), SEED), self.now);
        self.cluster.settle(self.now);
    }

    fn node_number(&self, i: usize) -> u32 {
        self.cluster.nodes[i]
            .engine
            .cluster_stats()
            .map_or(0, |s| s.node)
    }

    /// Opens a client on node `i`, route `r`; `None` if the node does
    /// not accept connections now.
    fn open(&mut self, i: usize, r: usize, user: &str) -> Option<usize> {
        if !self.cluster.nodes[i].engine.accepting() {
            return None;
        }
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let (path, protocol) = ROUTES[r];
        let query = if protocol == Protocol::Presence {
            format!("userId={user}")
        } else {
            String::new()
        };
        let input = Input::Open {
            conn,
            protocol,
            path: path.into(),
            query,
            peer: None,
            identity: None,
        };
        self.cluster.input(i, self.now, input);
        self.clients.push(Client {
            node: i,
            conn,
            route: r,
        });
        Some(self.clients.len() - 1)
    }

    fn send(&mut self, c: usize, text: &str) {
        let Client { node, conn, .. } = self.clients[c];
        let input = Input::Text {
            conn,
            text: text.into(),
        };
        self.cluster.input(node, self.now, input);
    }

    fn close(&mut self, c: usize) {
        let Client { node, conn, .. } = self.clients[c];
        self.cluster.input(node, self.now, Input::Closed { conn });
    }

    /// Advances the clock by `ms`, firing every node's timers.
    fn tick(&mut self, ms: u64) {
        self.now += ms;
        for i in 0..self.cluster.nodes.len() {
            if self.cluster.nodes[i].alive {
                self.cluster.input(i, self.now, Input::Timeout);
            }
        }
    }

    /// Lets `ms` pass in quarter seconds, Redis doing all it is asked.
    fn run_for(&mut self, ms: u64) {
        for _ in 0..ms / 250 {
            self.tick(250);
            self.cluster.settle(self.now);
        }
    }

    /// Signal room ids seen so far in any output.
    fn room_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for node in &self.cluster.nodes {
            for output in &node.outputs {
                if let Output::Send { text, .. } = output
                    && text.contains("room-created")
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(text)
                    && let Some(id) = v["roomId"].as_str()
                    && !ids.iter().any(|i| i == id)
                {
                    ids.push(id.to_string());
                }
            }
        }
        ids
    }

    /// What each cluster-wide connection received, from the nodes'
    /// outputs (a node's number is taken as it is now).
    fn received(&self) -> BTreeMap<ConnId, Vec<String>> {
        let mut got: BTreeMap<ConnId, Vec<String>> = BTreeMap::new();
        for (i, node) in self.cluster.nodes.iter().enumerate() {
            let n = self.node_number(i);
            for output in &node.outputs {
                let (conn, what) = describe(output);
                got.entry(global(n, conn)).or_default().push(what);
            }
        }
        got
    }

    /// The single engine fed Redis's log in order, and what it sent.
    /// The engine's ids are positions in the returned list of
    /// cluster-wide ids.
    fn reference(&self) -> (Engine, BTreeMap<ConnId, Vec<String>>, Vec<ConnId>) {
        let mut engine = Engine::new(config(false), SEED);
        let mut got: BTreeMap<ConnId, Vec<String>> = BTreeMap::new();
        let mut open: Vec<ConnId> = Vec::new();
        // The one engine is node 0: its ids are the cluster-wide ids'
        // positions in `open`.
        let small =
            |conn: ConnId, open: &mut Vec<ConnId>| match open.iter().position(|c| *c == conn) {
                Some(i) => ConnId(i as u64 + 1),
                None => {
                    open.push(conn);
                    ConnId(open.len() as u64)
                }
            };
        for message in &self.cluster.redis.log {
            let (_, json) = message.split_once(' ').expect("SEQ JSON");
            let event: Event = serde_json::from_str(json).expect("an event");
            let inputs: Vec<(u64, Input)> = match event {
                Event::Open {
                    conn,
                    protocol,
                    path,
                    query,
                    identity,
                    now,
                } => {
                    let conn = small(conn, &mut open);
                    vec![(
                        now,
                        Input::Open {
                            conn,
                            protocol,
                            path,
                            query,
                            peer: None,
                            identity,
                        },
                    )]
                }
                Event::Text { conn, text, now } => {
                    let conn = small(conn, &mut open);
                    vec![(now, Input::Text { conn, text })]
                }
                Event::Close { conn, now } => {
                    let conn = small(conn, &mut open);
                    vec![(now, Input::Closed { conn })]
                }
                Event::Gone { node, now } => {
                    let mut gone: Vec<ConnId> = open
                        .iter()
                        .copied()
                        .filter(|c| node_of(*c) == node)
                        .collect();
                    gone.sort_unstable();
                    let gone: Vec<ConnId> = gone.into_iter().map(|c| small(c, &mut open)).collect();
                    gone.into_iter()
                        .map(|conn| (now, Input::Closed { conn }))
                        .collect()
                }
                Event::Identity { .. } | Event::Sync { .. } | Event::Stored { .. } => vec![],
            };
            for (now, input) in inputs {
                engine.handle(now, input);
                for output in engine.drain_outputs() {
                    let (conn, what) = describe(&output);
                    let conn = open[conn.0 as usize - 1];
                    got.entry(conn).or_default().push(what);
                }
            }
        }
        (engine, got, open)
    }
}

/// An output as the client sees it.
fn describe(output: &Output) -> (ConnId, String) {
    match output {
        Output::Send { conn, text } => (*conn, text.to_string()),
        Output::Close { conn, reason } => (*conn, format!("close {}", reason.code())),
        Output::Ping { conn } => (*conn, "ping".into()),
        Output::Terminate { conn } => (*conn, "terminate".into()),
        Output::Bus { .. } => unreachable!("bus commands are taken apart"),
    }
}

/// Checks that every client got what one engine would have sent, and
/// that every synchronised replica holds the one engine's rooms.
fn check_against_one_engine(w: &World) {
    let (engine, want, ids) = w.reference();
    let got = w.received();
    let keys: std::collections::BTreeSet<_> = want.keys().chain(got.keys()).collect();
    for conn in keys {
        assert_eq!(
            got.get(conn),
            want.get(conn),
            "what {conn:?} (node {}, {:?}) received",
            node_of(*conn),
            local_of(*conn)
        );
    }
    for (i, node) in w.cluster.nodes.iter().enumerate() {
        if !node.alive || !node.engine.accepting() {
            continue;
        }
        node.engine.check_invariants().expect("replica invariants");
        for (path, protocol) in ROUTES {
            assert_eq!(
                node.engine.online_users(path),
                engine.online_users(path),
                "node {i}: online users of {path}"
            );
            for room in NAMES.iter().map(|s| s.to_string()).chain(w.room_ids()) {
                let room = if protocol == Protocol::Chat {
                    ""
                } else {
                    &room
                };
                let want = engine
                    .members(path, room)
                    .map(|m| m.iter().map(|c| ids[c.0 as usize - 1]).collect::<Vec<_>>());
                assert_eq!(
                    node.engine.members(path, room),
                    want,
                    "node {i}: members of {path} {room}"
                );
            }
        }
    }
}

#[test]
fn a_chat_message_reaches_every_node_once_in_one_order() {
    let mut w = World::new(2);
    let a = w.open(0, 3, "").expect("node 0 ready");
    let b = w.open(1, 3, "").expect("node 1 ready");
    w.cluster.settle(w.now);
    w.send(a, r#"{"type":"chat","payload":{"text":"from a"}}"#);
    w.send(b, r#"{"type":"chat","payload":{"text":"from b"}}"#);
    w.cluster.settle(w.now);
    let got = w.received();
    let g = |c: usize| global(w.node_number(w.clients[c].node), w.clients[c].conn);
    let (ga, gb) = (got[&g(a)].clone(), got[&g(b)].clone());
    assert_eq!(ga.len(), 3, "welcome and two messages: {ga:?}");
    assert_eq!(ga[1..], gb[1..], "one order on both nodes");
    check_against_one_engine(&w);
}

#[test]
fn a_late_node_loads_the_state_and_sees_the_same_rooms() {
    let mut w = World::new(1);
    let host = w.open(0, 1, "").expect("ready");
    w.send(host, r#"{"type":"create-room"}"#);
    let alice = w.open(0, 2, "alice").expect("ready");
    w.cluster.settle(w.now);
    w.add_node();
    assert!(
        w.cluster.nodes[1].engine.accepting(),
        "the new node synchronised"
    );
    let ids = w.room_ids();
    let guest = w.open(1, 1, "").expect("ready");
    w.send(
        guest,
        &format!(r#"{{"type":"join-room","roomId":"{}"}}"#, ids[0]),
    );
    let bob = w.open(1, 2, "bob").expect("ready");
    w.cluster.settle(w.now);
    w.close(alice);
    w.cluster.settle(w.now);
    let got = w.received();
    let g = |c: usize| global(w.node_number(w.clients[c].node), w.clients[c].conn);
    assert!(
        got[&g(host)].iter().any(|m| m.contains("peer-joined")),
        "the host on node 0 hears the guest of node 1: {:?}",
        got[&g(host)]
    );
    assert!(
        got[&g(bob)]
            .iter()
            .any(|m| m.contains("USER_OFFLINE") && m.contains("alice")),
        "bob on node 1 hears alice of node 0 leave"
    );
    check_against_one_engine(&w);
}

#[test]
fn a_dead_node_is_reaped_and_its_users_leave_once() {
    let mut w = World::new(2);
    w.open(0, 2, "alice").expect("ready");
    w.open(1, 2, "alice").expect("ready");
    let bob = w.open(1, 2, "bob").expect("ready");
    w.open(0, 2, "carol").expect("ready");
    w.cluster.settle(w.now);
    w.cluster.nodes[0].alive = false;
    w.run_for(TIMEOUT_MS + 2_000);
    let got = w.received();
    let g = |c: usize| global(w.node_number(w.clients[c].node), w.clients[c].conn);
    let offline: Vec<&String> = got[&g(bob)]
        .iter()
        .filter(|m| m.contains("USER_OFFLINE"))
        .collect();
    assert_eq!(offline.len(), 1, "carol only, once: {offline:?}");
    assert!(offline[0].contains("carol"));
    assert_eq!(
        w.cluster.nodes[1].engine.online_users("/presence"),
        ["alice", "bob"]
    );
    check_against_one_engine(&w);
}

#[test]
fn a_paused_node_comes_back_fenced_closes_with_1012_and_rejoins() {
    let mut w = World::new(2);
    let a = w.open(0, 2, "alice").expect("ready");
    let b = w.open(1, 2, "bob").expect("ready");
    w.cluster.settle(w.now);
    let before = w.node_number(0);
    w.cluster.nodes[0].alive = false;
    w.run_for(TIMEOUT_MS + 2_000);
    w.cluster.nodes[0].alive = true;
    w.tick(250);
    // Its heartbeat finds it fenced; its timers fire again before the new
    // registration is answered (the reactor's do at once).
    while w.cluster.run_command(0, w.now) {}
    while w.cluster.deliver(0, w.now, false) {}
    w.cluster.input(0, w.now, Input::Timeout);
    w.cluster.settle(w.now);
    assert_eq!(
        w.cluster.redis.nodes.len(),
        2,
        "registered again once: {:?}",
        w.cluster.redis.nodes
    );
    let outputs = &w.cluster.nodes[0].outputs;
    assert!(
        outputs.iter().any(|o| matches!(o, Output::Close { conn, reason } if *conn == w.clients[a].conn && reason.code() == 1012)),
        "alice's connection closed with 1012: {outputs:?}"
    );
    assert_ne!(w.node_number(0), before, "joined again under a new number");
    assert!(w.cluster.nodes[0].engine.accepting());
    assert_eq!(w.cluster.nodes[0].engine.online_users("/presence"), ["bob"]);
    let _ = b;
}

/// Redis restarts empty; `during` runs in the outage. Node 0 comes back
/// first and goes on alone from its replica (publishing what it must)
/// before node 1 has resubscribed; node 1 then loads node 0's state.
/// What each of `clients` received about `user`, with presence's
/// online users on both nodes after.
fn restart_with_node_1_late(
    w: &mut World,
    during: impl FnOnce(&mut World),
    clients: &[usize],
    user: &str,
) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    w.cluster.restart(w.now);
    during(w);
    w.cluster.nodes[1].alive = false;
    w.cluster.reconnect(0, w.now);
    w.cluster.settle(w.now);
    w.cluster.nodes[1].alive = true;
    w.cluster.reconnect(1, w.now);
    w.run_for(1_000);
    assert!(w.cluster.nodes[1].engine.accepting(), "node 1 synchronised");
    let got = w.received();
    let g = |c: usize| global(w.node_number(w.clients[c].node), w.clients[c].conn);
    let about = clients
        .iter()
        .map(|c| {
            let quoted = format!("\"{user}\"");
            got[&g(*c)]
                .iter()
                .filter(|m| m.contains("USER_O") && m.contains(&quoted))
                .cloned()
                .collect()
        })
        .collect();
    let online = (0..2)
        .map(|i| w.cluster.nodes[i].engine.online_users("/presence"))
        .collect();
    (about, online)
}

/// A client closed while Redis restarted: its node publishes the close
/// before the other has resubscribed; the other loads the state without
/// the client and still tells its own clients it left, once.
#[test]
fn a_close_during_a_redis_restart_reaches_a_node_that_loads_the_state_after_it() {
    let mut w = World::new(2);
    let alice = w.open(0, 2, "alice").expect("ready");
    let carol = w.open(0, 2, "carol").expect("ready");
    let bob = w.open(1, 2, "bob").expect("ready");
    w.cluster.settle(w.now);
    let (about, online) =
        restart_with_node_1_late(&mut w, |w| w.close(carol), &[alice, bob], "carol");
    for messages in about {
        let offline = messages.iter().filter(|m| m.contains("USER_OFFLINE"));
        assert_eq!(offline.count(), 1, "offline once: {messages:?}");
        assert!(messages.last().is_some_and(|m| m.contains("USER_OFFLINE")));
    }
    assert_eq!(online, [["alice", "bob"], ["alice", "bob"]]);
}

/// An open Redis published just before it restarted reached its own
/// node only; the other loads the state holding it and tells its own
/// clients of the arrival, once.
#[test]
fn an_open_only_one_node_heard_before_a_redis_restart_is_announced_by_the_other() {
    let mut w = World::new(2);
    let alice = w.open(0, 2, "alice").expect("ready");
    let bob = w.open(1, 2, "bob").expect("ready");
    w.cluster.settle(w.now);
    w.open(0, 2, "dave").expect("ready");
    while w.cluster.run_command(0, w.now) {}
    while w.cluster.deliver(0, w.now, true) {}
    while w.cluster.deliver(0, w.now, false) {}
    let (about, online) = restart_with_node_1_late(&mut w, |_| {}, &[alice, bob], "dave");
    for messages in about {
        assert_eq!(messages.len(), 1, "online once: {messages:?}");
        assert!(messages[0].contains("USER_ONLINE"), "{messages:?}");
    }
    assert_eq!(online, [["alice", "bob", "dave"], ["alice", "bob", "dave"]]);
}

/// One step of the property test.
#[derive(Clone, Debug)]
enum Op {
    Open {
        node: u8,
        route: u8,
        user: u8,
    },
    Send {
        client: u8,
        index: u8,
        slots: [u8; 3],
    },
    Close {
        client: u8,
    },
    /// Runs one command (0), delivers one reply (1) or one message (2)
    /// of a node.
    Step {
        node: u8,
        what: u8,
    },
    Settle,
    AddNode,
    /// A node's connections to Redis drop and come back (the messages on
    /// their way are lost).
    Blip {
        node: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let small = || prop_oneof![3 => 0..3u8, 1 => any::<u8>()];
    prop_oneof![
        3 => (any::<u8>(), prop::sample::select(vec![0u8, 1, 2, 3, 4]), 0..4u8)
            .prop_map(|(node, route, user)| Op::Open { node, route, user }),
        8 => (any::<u8>(), any::<u8>(), [small(), small(), small()])
            .prop_map(|(client, index, slots)| Op::Send { client, index, slots }),
        1 => any::<u8>().prop_map(|client| Op::Close { client }),
        8 => (any::<u8>(), 0..3u8).prop_map(|(node, what)| Op::Step { node, what }),
        1 => Just(Op::Settle),
        1 => Just(Op::AddNode),
        1 => any::<u8>().prop_map(|node| Op::Blip { node }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any operations, any interleaving of Redis's work: every client
    /// sees one engine's outputs, every replica one engine's state.
    #[test]
    fn the_cluster_is_one_engine(ops in prop::collection::vec(op(), 1..120)) {
        let mut w = World::new(2);
        for op in ops {
            let nodes = w.cluster.nodes.len();
            match op {
                Op::Open { node, route, user } => {
                    let name = NAMES[usize::from(user) % NAMES.len()];
                    w.open(usize::from(node) % nodes, usize::from(route), name);
                }
                Op::Send { client, index, slots } if !w.clients.is_empty() => {
                    let c = usize::from(client) % w.clients.len();
                    let protocol = ROUTES[w.clients[c].route].1;
                    let ids = w.room_ids();
                    let cx = Context { created: ids.len(), own: Vec::new() };
                    let text = template(protocol, index, slots, &cx).render(&ids);
                    w.send(c, &text);
                }
                Op::Close { client } if !w.clients.is_empty() => {
                    let c = usize::from(client) % w.clients.len();
                    w.close(c);
                }
                Op::Step { node, what } => {
                    let i = usize::from(node) % nodes;
                    let now = w.now;
                    match what {
                        0 => _ = w.cluster.run_command(i, now),
                        1 => _ = w.cluster.deliver(i, now, false),
                        _ => _ = w.cluster.deliver(i, now, true),
                    }
                }
                Op::Settle => {
                    w.cluster.settle(w.now);
                    w.now += 1;
                }
                Op::AddNode if nodes < 4 => w.add_node(),
                Op::Blip { node } => {
                    let now = w.now;
                    w.cluster.blip(usize::from(node) % nodes, now);
                }
                _ => {}
            }
        }
        w.cluster.settle(w.now);
        check_against_one_engine(&w);
    }
}

/// Whatever Redis says, however wrong.
fn hostile_input() -> impl Strategy<Value = BusInput> {
    let node = prop_oneof![0..4u32, any::<u32>()];
    let conn = (0..4u32, 0..6u64).prop_map(|(n, c)| global(n, ConnId(c)));
    let path = prop::sample::select(vec!["/chat", "/presence", "/stream", "/x"]);
    let protocol = prop::sample::select(Protocol::ALL.to_vec());
    let event = prop_oneof![
        (conn.clone(), protocol, path, any::<u64>()).prop_map(|(conn, protocol, path, now)| {
            Event::Open {
                conn,
                protocol,
                path: path.into(),
                query: "userId=x".into(),
                identity: None,
                now,
            }
        }),
        (conn.clone(), "[ -~]{0,40}", any::<u64>()).prop_map(|(conn, text, now)| Event::Text {
            conn,
            text,
            now
        }),
        (conn, any::<u64>()).prop_map(|(conn, now)| Event::Close { conn, now }),
        (node.clone(), any::<u64>()).prop_map(|(node, now)| Event::Gone { node, now }),
        (node.clone(), any::<bool>()).prop_map(|(node, alone)| Event::Sync { node, alone }),
        (node, any::<u64>()).prop_map(|(node, at)| Event::Stored { node, at }),
    ];
    let seq = prop_oneof![0..40u64, any::<u64>()];
    let message = prop_oneof![
        (seq.clone(), prop::collection::vec(event, 1..4)).prop_map(|(seq, events)| {
            let events: Vec<String> = events.iter().map(Event::encode).collect();
            format!("{seq} {}", events.join("\n"))
        }),
        "[ -~\n]{0,60}".prop_map(|s| s),
    ];
    let leaf = prop_oneof![
        any::<i64>().prop_map(BusReply::Int),
        prop::sample::select(vec!["ok", "fenced", "restarted", "e", "{}", "[]"])
            .prop_map(|s| BusReply::Text(s.into())),
        Just(BusReply::Nil),
        Just(BusReply::Failed),
        Just(BusReply::Error("FENCED node not registered".into())),
    ];
    let reply = leaf.prop_recursive(2, 8, 4, |inner| {
        prop::collection::vec(inner, 0..5).prop_map(BusReply::Array)
    });
    prop_oneof![
        1 => Just(BusInput::Up),
        1 => Just(BusInput::Down),
        1 => Just(BusInput::Subscribed),
        4 => (0..40u64, reply).prop_map(|(id, reply)| BusInput::Reply { id, reply }),
        6 => message.prop_map(|payload| BusInput::Message { payload }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A node with clients, then anything at all from Redis: no panic,
    /// and its tables stay consistent.
    #[test]
    fn nothing_redis_says_breaks_a_node(inputs in prop::collection::vec(hostile_input(), 1..60)) {
        let mut w = World::new(2);
        w.open(0, 2, "alice");
        w.open(0, 3, "");
        w.open(1, 4, "");
        w.cluster.settle(w.now);
        for input in inputs {
            w.now += 7;
            w.cluster.input(0, w.now, Input::Bus(input));
            w.cluster.input(0, w.now, Input::Timeout);
            let engine = &w.cluster.nodes[0].engine;
            prop_assert!(engine.check_invariants().is_ok(), "{:?}", engine.check_invariants());
        }
    }
}
