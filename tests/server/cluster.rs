//! Cluster mode end to end: a `redis-server` of the test's own and
//! several `roomd` binaries on it, clients spread over the nodes
//! (CLUSTER.md "How it is tested").

use crate::live::binary::{KillOnDrop, next_line, roomd, spawn};
use crate::live::redis::{RedisServer, TestClient};
use crate::live::{Client, TIMEOUT, eventually_within, http, try_ws_at, ws_at};
use roomd::engine::BusCommand;
use roomd::engine::cluster::Event as BusEvent;
use roomd::protocol::resp::Reply;
use roomd::server::redis::scripts::{self, Call};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// The node timeout the tests run with.
const NODE_TIMEOUT_MS: u64 = 1_000;

/// How long after its node dies a connection's leave may take
/// (CLUSTER.md "No ghosts": the node timeout plus 1.5 s).
const REAP_WITHIN: Duration = Duration::from_millis(NODE_TIMEOUT_MS + 1_500);

/// A roomd node of the cluster; its log is printed if the test fails.
struct Node {
    process: KillOnDrop,
    addr: SocketAddr,
    log: Receiver<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for line in self.log.try_iter() {
                eprintln!("[node {}] {line}", self.addr);
            }
        }
    }
}

impl Node {
    /// Starts a node on `redis` and waits until it serves.
    fn start(redis: &RedisServer) -> Node {
        Node::start_with(redis, &[])
    }

    /// [`Node::start`] with more arguments.
    fn start_with(redis: &RedisServer, args: &[&str]) -> Node {
        let mut command = roomd();
        command.args(["--listen", "127.0.0.1:0", "--log-level", "info"]);
        command.args(["--redis", &redis.url(0)]);
        command.args(["--node-timeout", &format!("{NODE_TIMEOUT_MS}ms")]);
        command.args(args);
        let spawned = spawn(command);
        let node = Node {
            process: KillOnDrop(spawned.child),
            addr: spawned.addr,
            log: spawned.log,
        };
        node.wait_ready();
        node
    }

    fn health(&self) -> (u16, Value) {
        let (status, _, body) = http(self.addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        (status, serde_json::from_str(&body).expect("JSON health"))
    }

    fn wait_ready(&self) {
        eventually_within(TIMEOUT, "the node to serve", || self.health().0 == 200);
    }

    fn ws(&self, path: &str) -> Client {
        ws_at(self.addr, path)
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`, `TERM`) to the process.
    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.process.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }
}

/// A Redis of the test's own and two nodes on it.
fn two_nodes() -> (RedisServer, Node, Node) {
    let redis = RedisServer::start(None);
    let (a, b) = (Node::start(&redis), Node::start(&redis));
    (redis, a, b)
}

/// The user ids of a presence `ONLINE_USERS`, sorted.
fn online(message: &Value) -> Vec<String> {
    assert_eq!(message["type"], "ONLINE_USERS", "{message}");
    let mut ids: Vec<String> = message["userIds"]
        .as_array()
        .expect("userIds")
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        .collect();
    ids.sort();
    ids
}

/// A presence connection of `user` on `node`, past its two greetings;
/// returns it and the users `ONLINE_USERS` listed.
fn presence(node: &Node, user: &str) -> (Client, Vec<String>) {
    let mut c = node.ws(&format!("/presence?userId={user}"));
    let established = c.recv();
    assert_eq!(
        established["type"], "CONNECTION_ESTABLISHED",
        "{established}"
    );
    let id = &established["userId"];
    assert_eq!(
        id.as_str().map_or_else(|| id.to_string(), str::to_string),
        user
    );
    let users = online(&c.recv());
    (c, users)
}

/// A presence client's next message is the answer to a `PING`: nothing
/// else was owed to it.
fn nothing_more_presence(c: &mut Client, who: &str) {
    c.send(r#"{"type":"PING"}"#);
    let next = c.recv();
    assert_eq!(next["type"], "PONG", "{who} got {next} instead");
}

/// A scratch, signal or stream client's next message is the error for an
/// unknown type: nothing else was owed to it.
fn nothing_more(c: &mut Client, who: &str) {
    c.send(r#"{"type":"nothing-more"}"#);
    let next = c.recv();
    assert_eq!(next["type"], "error", "{who} got {next} instead");
}

/// Joins stream room `room` as `user`; returns the participants'
/// `room-joined` listed.
fn stream_join(c: &mut Client, room: &str, user: &str, name: &str) -> Value {
    c.send_json(json!({"type":"join-room","roomId":room,"userId":user,"userName":name}));
    let joined = c.recv();
    assert_eq!(joined["type"], "room-joined", "{joined}");
    assert_eq!(joined["roomId"], room);
    joined["participants"].clone()
}

/// A participant as `room-joined` lists it.
fn participant(user: &str, name: &str, streaming: bool) -> Value {
    json!({"userId": user, "userName": name, "isStreaming": streaming})
}

#[test]
fn chat_broadcasts_reach_every_node_in_one_order() {
    let (_redis, a, b) = two_nodes();
    let mut on_a = a.ws("/chat");
    let mut on_b = b.ws("/chat");
    on_a.recv_type("system");
    on_b.recv_type("system");
    for i in 0..20 {
        on_a.send_json(json!({"type":"chat","payload":{"from":"a","n":i}}));
        on_b.send_json(json!({"type":"chat","payload":{"from":"b","n":i}}));
    }
    let read = |c: &mut Client| -> Vec<Value> {
        (0..40)
            .map(|_| c.recv_type("chat")["payload"].clone())
            .collect()
    };
    let (seen_a, seen_b) = (read(&mut on_a), read(&mut on_b));
    assert_eq!(seen_a, seen_b, "one order on both nodes");
    for from in ["a", "b"] {
        let ns: Vec<_> = seen_a
            .iter()
            .filter(|p| p["from"] == from)
            .map(|p| p["n"].clone())
            .collect();
        assert_eq!(
            ns,
            (0..20).map(|i| json!(i)).collect::<Vec<_>>(),
            "{from}'s order"
        );
    }
    let (_, health) = a.health();
    assert_eq!(health["redis"], "up");
    eventually_within(TIMEOUT, "two live nodes in /health", || {
        a.health().1["nodes"] == 2
    });
}

/// protocols.rs `scratch_sessions_sync_between_members`, its two members
/// on two nodes, every message compared whole.
#[test]
fn scratch_sessions_span_nodes() {
    let (_redis, a, b) = two_nodes();
    let mut on_a = a.ws("/scratch");
    let mut on_b = b.ws("/scratch");
    on_a.send_json(json!({"type": "join", "sessionId": "s1"}));
    let joined_a = on_a.recv();
    let user_a = joined_a["userId"].as_str().expect("a userId").to_string();
    assert_eq!(
        joined_a,
        json!({"type":"joined","sessionId":"s1","userId":user_a,"users":[]})
    );
    on_b.send_json(json!({"type": "join", "sessionId": "s1"}));
    let joined_b = on_b.recv();
    let user_b = joined_b["userId"].as_str().expect("b userId").to_string();
    assert_eq!(
        joined_b,
        json!({"type":"joined","sessionId":"s1","userId":user_b,"users":[user_a]})
    );
    assert_ne!(user_a, user_b);
    assert_eq!(
        on_a.recv(),
        json!({"type":"user-joined","sessionId":"s1","userId":user_b})
    );
    let changes = json!([{"op": "set", "path": ["x"], "value": 1}]);
    on_b.send_json(json!({"type": "sync", "sessionId": "s1", "changes": changes}));
    assert_eq!(
        on_a.recv(),
        json!({"type":"sync","sessionId":"s1","userId":user_b,"changes":changes})
    );
    let back = json!({"k": [1, 2.5, null]});
    on_a.send_json(json!({"type": "sync", "sessionId": "s1", "changes": back}));
    assert_eq!(
        on_b.recv(),
        json!({"type":"sync","sessionId":"s1","userId":user_a,"changes":back})
    );
    on_b.send_json(json!({"type": "sync", "sessionId": "s2", "changes": []}));
    assert_eq!(
        on_b.recv(),
        json!({"type":"error","message":"Not in session s2"})
    );
    on_b.send_json(json!({"type": "leave"}));
    assert_eq!(on_b.recv(), json!({"type":"left","sessionId":"s1"}));
    assert_eq!(
        on_a.recv(),
        json!({"type":"user-left","sessionId":"s1","userId":user_b})
    );
    on_b.send_json(json!({"type": "leave"}));
    assert_eq!(
        on_b.recv(),
        json!({"type":"error","message":"Not in a session"})
    );
    // Joined again, then disconnected: the same leave.
    on_b.send_json(json!({"type": "join", "sessionId": "s1"}));
    assert_eq!(on_b.recv()["users"], json!([user_a]));
    on_a.recv_type("user-joined");
    drop(on_b);
    assert_eq!(
        on_a.recv(),
        json!({"type":"user-left","sessionId":"s1","userId":user_b})
    );
    nothing_more(&mut on_a, "a");
}

/// protocols.rs `signal_rooms_forward_between_two_peers`, host and guest
/// on two nodes, relays both ways.
#[test]
fn signal_rooms_span_nodes() {
    let (_redis, a, b) = two_nodes();
    let mut host = a.ws("/signal");
    let mut guest = b.ws("/signal");
    host.send_json(json!({"type": "create-room"}));
    let created = host.recv();
    assert_eq!(created["type"], "room-created", "{created}");
    let room = created["roomId"].as_str().expect("roomId").to_string();
    assert!(
        room.len() == 6 && room.bytes().all(|c| c.is_ascii_digit()),
        "{room}"
    );
    guest.send_json(json!({"type": "join-room", "roomId": room}));
    let joined = json!({"type":"peer-joined","roomId":room});
    assert_eq!(host.recv(), joined);
    assert_eq!(guest.recv(), joined);
    let offer = json!({"type": "signal", "roomId": room, "sdp": {"type": "offer", "sdp": "v=0"}, "extra": 7});
    host.send_json(offer.clone());
    assert_eq!(guest.recv(), offer, "forwarded verbatim from a to b");
    let answer = json!({"type": "signal", "roomId": room, "sdp": {"type": "answer"}});
    guest.send_json(answer.clone());
    assert_eq!(host.recv(), answer, "forwarded verbatim from b to a");
    let said = json!({"type": "chat-message", "roomId": room, "message": "hi", "n": [1]});
    guest.send_json(said.clone());
    assert_eq!(host.recv(), said);
    // A third on either node is refused; a non-member reaches no one.
    for node in [&a, &b] {
        let mut third = node.ws("/signal");
        third.send_json(json!({"type": "join-room", "roomId": room}));
        assert_eq!(
            third.recv(),
            json!({"type":"error","message":"Room not found or full"})
        );
        third.send_json(json!({"type": "signal", "roomId": room}));
        assert_eq!(
            third.recv(),
            json!({"type":"error","message":"Not a member of this room"})
        );
    }
    // Room ids are unique cluster-wide.
    let mut ids = std::collections::BTreeSet::from([room.clone()]);
    for node in [&a, &b] {
        let mut more = node.ws("/signal");
        for _ in 0..10 {
            more.send_json(json!({"type": "create-room"}));
            let id = more.recv()["roomId"].as_str().expect("roomId").to_string();
            assert!(ids.insert(id), "a room id given twice");
        }
    }
    drop(guest);
    assert_eq!(host.recv(), json!({"type":"peer-left","roomId":room}));
    nothing_more(&mut host, "the host");
}

/// protocols.rs `stream_rooms_track_participants`, participants on two
/// nodes, and the takeover of a participant from the other node.
#[test]
fn stream_rooms_span_nodes() {
    let (_redis, a, b) = two_nodes();
    let mut ann = a.ws("/stream");
    let mut bo = b.ws("/stream");
    assert_eq!(
        stream_join(&mut ann, "r", "u1", "Ann"),
        json!([participant("u1", "Ann", false)])
    );
    assert_eq!(
        stream_join(&mut bo, "r", "u2", "Bo"),
        json!([
            participant("u1", "Ann", false),
            participant("u2", "Bo", false)
        ])
    );
    assert_eq!(
        ann.recv(),
        json!({"type":"user-joined","roomId":"r","participant":participant("u2", "Bo", false)})
    );
    bo.send_json(json!({"type": "start-streaming", "roomId": "r", "userId": "u2"}));
    for c in [&mut ann, &mut bo] {
        assert_eq!(
            c.recv(),
            json!({"type":"user-streaming-started","roomId":"r","userId":"u2"})
        );
    }
    ann.send_json(json!({"type": "chat-message", "roomId": "r", "userId": "u1", "content": "hey"}));
    for c in [&mut ann, &mut bo] {
        let mut m = c.recv();
        assert!(
            m["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{m}"
        );
        m.as_object_mut().expect("an object").remove("timestamp");
        assert_eq!(
            m,
            json!({"type":"chat-message","roomId":"r","userId":"u1","userName":"Ann","content":"hey"})
        );
    }
    bo.send_json(
        json!({"type": "chat-message", "roomId": "r", "userId": "u1", "content": "spoof"}),
    );
    assert_eq!(
        bo.recv(),
        json!({"type":"error","message":"userId does not match this connection"})
    );
    // Bo reconnects on node a before the old socket is noticed dead: the
    // new connection takes the participant over (streaming kept), the old
    // one is told, Ann is told nothing.
    let mut bo2 = a.ws("/stream");
    assert_eq!(
        stream_join(&mut bo2, "r", "u2", "Bo"),
        json!([
            participant("u1", "Ann", false),
            participant("u2", "Bo", true)
        ])
    );
    assert_eq!(
        bo.recv(),
        json!({"type":"error","message":"Replaced by a newer connection"})
    );
    bo.send_json(json!({"type": "stop-streaming", "roomId": "r", "userId": "u2"}));
    assert_eq!(
        bo.recv(),
        json!({"type":"error","message":"Not in room r"}),
        "the old connection is detached"
    );
    bo2.send_json(json!({"type": "stop-streaming", "roomId": "r", "userId": "u2"}));
    for c in [&mut ann, &mut bo2] {
        assert_eq!(
            c.recv(),
            json!({"type":"user-streaming-stopped","roomId":"r","userId":"u2"})
        );
    }
    // The old socket closing takes no one away.
    drop(bo);
    nothing_more(&mut ann, "Ann after the old socket closed");
    bo2.send_json(json!({"type": "leave-room", "roomId": "r"}));
    assert_eq!(
        ann.recv(),
        json!({"type":"user-left","roomId":"r","userId":"u2"})
    );
    let mut cy = b.ws("/stream");
    assert_eq!(
        stream_join(&mut cy, "r", "u3", "Cy"),
        json!([
            participant("u1", "Ann", false),
            participant("u3", "Cy", false)
        ])
    );
    ann.recv_type("user-joined");
    drop(ann);
    assert_eq!(
        cy.recv(),
        json!({"type":"user-left","roomId":"r","userId":"u1"})
    );
    nothing_more(&mut cy, "Cy");
}

/// protocols.rs `presence_announces_users_per_route` across nodes:
/// `ONLINE_USERS`, `USER_ONLINE` on a user's first connection anywhere,
/// `USER_OFFLINE` on its last, connection ids unique cluster-wide.
#[test]
fn presence_spans_nodes() {
    let (_redis, a, b) = two_nodes();
    let (mut alice, users) = presence(&a, "alice");
    assert_eq!(users, ["alice"]);
    let (mut other_route, users) = {
        let mut c = b.ws("/ws-online-status?userId=carol");
        c.recv_type("CONNECTION_ESTABLISHED");
        let users = online(&c.recv());
        (c, users)
    };
    assert_eq!(users, ["carol"], "routes are separate namespaces");
    let (mut bob, users) = presence(&b, "42");
    assert_eq!(users, ["42", "alice"]);
    let on = alice.recv();
    assert_eq!(on["type"], "USER_ONLINE");
    assert_eq!(on["userId"], 42, "numeric ids are numbers");
    // A second connection of alice's, on the other node: nothing told.
    let (alice2, users) = presence(&b, "alice");
    assert_eq!(users, ["42", "alice"]);
    nothing_more_presence(&mut bob, "bob after alice's second connection");
    drop(alice);
    nothing_more_presence(&mut bob, "bob after alice's first connection closed");
    drop(alice2);
    let off = bob.recv();
    assert_eq!(off["type"], "USER_OFFLINE", "{off}");
    assert_eq!(off["userId"], "alice");
    nothing_more_presence(&mut other_route, "the other route");
    // Connection ids are unique cluster-wide: one user opening on both
    // nodes at once (the same millisecond now and then).
    let opener = |node: SocketAddr| {
        std::thread::spawn(move || {
            (0..10)
                .map(|_| {
                    let mut c = ws_at(node, "/presence?userId=dup");
                    let id = c.recv()["connectionId"].as_str().unwrap_or("").to_string();
                    (c, id)
                })
                .collect::<Vec<_>>()
        })
    };
    let (ta, tb) = (opener(a.addr), opener(b.addr));
    let mut all = ta.join().expect("opener a");
    all.extend(tb.join().expect("opener b"));
    let ids: std::collections::BTreeSet<&str> = all.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), 20, "unique connection ids: {ids:?}");
    for id in &ids {
        let rest = id.strip_prefix("dup-").expect("ID-MS");
        assert!(
            rest.split('-')
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit())),
            "{id}"
        );
    }
    let on = bob.recv();
    assert_eq!(
        (&on["type"], &on["userId"]),
        (&json!("USER_ONLINE"), &json!("dup"))
    );
    nothing_more_presence(&mut bob, "bob after dup's many connections");
}

/// Three senders on three nodes sending into one stream room as fast as
/// they can: every member on every node sees one identical sequence, each
/// sender's messages in its order.
#[test]
fn one_order_per_room_with_senders_on_three_nodes() {
    const EACH: usize = 200;
    let redis = RedisServer::start(None);
    let nodes: Vec<Node> = (0..3)
        .map(|_| Node::start_with(&redis, &["--rate-limit", "0"]))
        .collect();
    let mut senders: Vec<Client> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let mut c = node.ws("/stream");
        stream_join(&mut c, "r", &format!("s{i}"), &format!("S{i}"));
        senders.push(c);
    }
    // A member that only listens, on the first node.
    let mut listener = nodes[0].ws("/stream");
    let participants = stream_join(&mut listener, "r", "l", "L");
    assert_eq!(participants.as_array().map(Vec::len), Some(4));
    let sending: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            std::thread::spawn(move || {
                for n in 0..EACH {
                    let content = format!("{i}:{n}");
                    c.send_json(json!({"type":"chat-message","roomId":"r","userId":format!("s{i}"),"content":content}));
                }
                c
            })
        })
        .collect();
    let mut members: Vec<Client> = sending
        .into_iter()
        .map(|t| t.join().expect("a sender"))
        .collect();
    members.push(listener);
    let sequences: Vec<Vec<String>> = members
        .iter_mut()
        .map(|c| {
            (0..3 * EACH)
                .map(|_| {
                    let m = c.recv_type("chat-message");
                    m["content"].as_str().expect("content").to_string()
                })
                .collect()
        })
        .collect();
    for (i, seen) in sequences.iter().enumerate().skip(1) {
        assert_eq!(seen, &sequences[0], "member {i}'s order is member 0's");
    }
    for i in 0..3 {
        let prefix = format!("{i}:");
        let ns: Vec<usize> = sequences[0]
            .iter()
            .filter_map(|c| c.strip_prefix(&prefix)?.parse().ok())
            .collect();
        assert_eq!(ns, (0..EACH).collect::<Vec<_>>(), "sender {i}'s order");
    }
    // The senders did interleave (else the order was never at stake).
    let runs = sequences[0]
        .windows(2)
        .filter(|w| w[0].split(':').next() != w[1].split(':').next())
        .count();
    assert!(runs >= 2, "no interleaving at all: {runs} switches");
}

#[test]
fn presence_is_cluster_wide_and_a_killed_node_s_users_go_offline() {
    let (_redis, a, b) = two_nodes();
    let (_alice, users) = presence(&a, "alice");
    assert_eq!(users, ["alice"]);
    let (mut bob, users) = presence(&b, "bob");
    assert_eq!(users, ["alice", "bob"]);
    // alice on b too: killing a must not take her offline.
    let (_alice2, _) = presence(&b, "alice");
    let (_carol, _) = presence(&a, "carol");
    assert_eq!(bob.recv_type("USER_ONLINE")["userId"], "carol");
    let killed = Instant::now();
    a.signal("KILL");
    let offline = bob.recv();
    assert_eq!(offline["type"], "USER_OFFLINE", "{offline}");
    assert_eq!(offline["userId"], "carol");
    assert!(
        killed.elapsed() < REAP_WITHIN,
        "carol reaped in {:?}",
        killed.elapsed()
    );
    nothing_more_presence(&mut bob, "bob (no USER_OFFLINE for alice)");
    let (_dave, users) = presence(&b, "dave");
    assert_eq!(users, ["alice", "bob", "dave"], "carol is gone everywhere");
}

/// A killed node's stream participants leave and its signal peers are
/// gone, within the node timeout plus 1.5 s, exactly once; a participant
/// that reconnected to another node stays.
#[test]
fn a_killed_node_s_stream_participants_and_signal_peers_leave() {
    let (_redis, a, b) = two_nodes();
    let mut ann = a.ws("/stream");
    stream_join(&mut ann, "r", "u1", "Ann");
    let mut bo_old = a.ws("/stream");
    stream_join(&mut bo_old, "r", "u2", "Bo");
    let mut watcher = b.ws("/stream");
    stream_join(&mut watcher, "r", "w", "W");
    // Bo reconnects to b before a dies: the takeover rule.
    let mut bo = b.ws("/stream");
    stream_join(&mut bo, "r", "u2", "Bo");
    bo_old.recv_type("error");
    // A signal room hosted on a with its guest on b, and one the other
    // way round.
    let pair = |host_node: &Node, guest_node: &Node| {
        let mut host = host_node.ws("/signal");
        host.send_json(json!({"type": "create-room"}));
        let room = host.recv()["roomId"].clone();
        let mut guest = guest_node.ws("/signal");
        guest.send_json(json!({"type": "join-room", "roomId": room}));
        host.recv_type("peer-joined");
        guest.recv_type("peer-joined");
        (host, guest, room)
    };
    let (_host_a, mut guest_b, room_1) = pair(&a, &b);
    let (mut host_b, _guest_a, room_2) = pair(&b, &a);
    let killed = Instant::now();
    a.signal("KILL");
    let left = json!({"type":"user-left","roomId":"r","userId":"u1"});
    assert_eq!(watcher.recv(), left);
    assert_eq!(bo.recv(), left);
    assert_eq!(guest_b.recv(), json!({"type":"peer-left","roomId":room_1}));
    assert_eq!(host_b.recv(), json!({"type":"peer-left","roomId":room_2}));
    assert!(
        killed.elapsed() < REAP_WITHIN,
        "leaves after {:?}",
        killed.elapsed()
    );
    nothing_more(&mut watcher, "the watcher (no user-left for u2)");
    nothing_more(&mut bo, "Bo");
    nothing_more(&mut guest_b, "the guest");
    nothing_more(&mut host_b, "the host");
    let mut late = b.ws("/stream");
    assert_eq!(
        stream_join(&mut late, "r", "u3", "Cy"),
        json!([
            participant("u2", "Bo", false),
            participant("w", "W", false),
            participant("u3", "Cy", false)
        ])
    );
}

/// A node paused past the timeout: the others remove its users (once),
/// and when it wakes it closes its connections with 1012 within 3 s and
/// serves again under a new number, without bringing anyone back.
#[test]
fn a_paused_node_wakes_fenced_and_serves_again() {
    let (_redis, a, b) = two_nodes();
    let (mut carol, _) = presence(&a, "carol");
    let mut ann = a.ws("/stream");
    stream_join(&mut ann, "r", "u1", "Ann");
    let (mut bob, users) = presence(&b, "bob");
    assert_eq!(users, ["bob", "carol"]);
    let mut bo = b.ws("/stream");
    stream_join(&mut bo, "r", "u2", "Bo");
    eventually_within(TIMEOUT, "two live nodes", || a.health().1["nodes"] == 2);
    a.signal("STOP");
    let paused = Instant::now();
    let off = bob.recv();
    assert_eq!(
        (&off["type"], &off["userId"]),
        (&json!("USER_OFFLINE"), &json!("carol"))
    );
    assert_eq!(
        bo.recv(),
        json!({"type":"user-left","roomId":"r","userId":"u1"})
    );
    assert!(
        paused.elapsed() < REAP_WITHIN,
        "reaped after {:?}",
        paused.elapsed()
    );
    a.signal("CONT");
    let woke = Instant::now();
    assert_eq!(carol.expect_close(), 1012);
    assert_eq!(ann.expect_close(), 1012);
    assert!(
        woke.elapsed() < Duration::from_secs(3),
        "closed {:?} after waking",
        woke.elapsed()
    );
    eventually_within(Duration::from_secs(3), "the woken node to serve", || {
        a.health().0 == 200
    });
    // It joined again once, under one new number.
    next_line(&a.log, "was removed");
    let mut joins = 0;
    loop {
        let line = next_line(&a.log, "cluster: ");
        joins += usize::from(line.contains("joined as node"));
        if line.contains("state loaded") || line.contains("going on from ours") {
            break;
        }
    }
    assert_eq!(joins, 1, "registered again once");
    // Nobody came back, nobody left twice.
    nothing_more_presence(&mut bob, "bob after the node woke");
    nothing_more(&mut bo, "Bo after the node woke");
    let (mut dave, users) = presence(&a, "dave");
    assert_eq!(users, ["bob", "dave"], "no ghost of carol");
    let on = bob.recv();
    assert_eq!(
        (&on["type"], &on["userId"]),
        (&json!("USER_ONLINE"), &json!("dave"))
    );
    let mut cy = a.ws("/stream");
    assert_eq!(
        stream_join(&mut cy, "r", "u3", "Cy"),
        json!([
            participant("u2", "Bo", false),
            participant("u3", "Cy", false)
        ]),
        "no ghost of Ann"
    );
    nothing_more_presence(&mut dave, "dave");
    eventually_within(TIMEOUT, "two live nodes again", || {
        a.health().1["nodes"] == 2 && b.health().1["nodes"] == 2
    });
}

/// Redis restarted empty: the nodes re-register what their connections
/// hold; a connection closed meanwhile and a node killed meanwhile are
/// told once; nobody who stayed is announced again; the online set and
/// the participant list are exactly the live connections.
#[test]
fn a_redis_restart_loses_nothing_that_lives() {
    let redis = RedisServer::start(None);
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&redis)).collect();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (mut alice, _) = presence(a, "alice");
    let (carol, _) = presence(a, "carol");
    let (mut bob, _) = presence(b, "bob");
    let (_dave, users) = presence(c, "dave");
    assert_eq!(users, ["alice", "bob", "carol", "dave"]);
    let mut ann = a.ws("/stream");
    stream_join(&mut ann, "r", "u1", "Ann");
    let mut bo = b.ws("/stream");
    stream_join(&mut bo, "r", "u2", "Bo");
    let mut cy = c.ws("/stream");
    stream_join(&mut cy, "r", "u3", "Cy");
    // Past the greetings each has had so far.
    for (who, n) in [(&mut alice, 3), (&mut bob, 1)] {
        for _ in 0..n {
            assert_eq!(who.recv()["type"], "USER_ONLINE");
        }
    }
    ann.recv_type("user-joined");
    ann.recv_type("user-joined");
    bo.recv_type("user-joined");

    let (port, password) = redis.kill9();
    eventually_within(Duration::from_secs(3), "redis down on every node", || {
        nodes.iter().all(|n| n.health().1["redis"] == "down")
    });
    drop(carol);
    c.signal("KILL");
    let redis = RedisServer::start_on(port, password);
    let back = Instant::now();
    // Carol closed and c died during the outage: told once each.
    for (who, name) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        let mut gone: Vec<String> = (0..2)
            .map(|_| {
                let m = who.recv();
                assert_eq!(m["type"], "USER_OFFLINE", "{name} got {m}");
                m["userId"].as_str().unwrap_or("").to_string()
            })
            .collect();
        gone.sort();
        assert_eq!(gone, ["carol", "dave"], "{name}");
    }
    let left = json!({"type":"user-left","roomId":"r","userId":"u3"});
    assert_eq!(ann.recv(), left);
    assert_eq!(bo.recv(), left);
    let settled = Duration::from_millis(NODE_TIMEOUT_MS) + Duration::from_secs(5);
    assert!(
        back.elapsed() < settled,
        "settled after {:?}",
        back.elapsed()
    );
    for node in &nodes[..2] {
        node.wait_ready();
        assert_eq!(node.health().1["redis"], "up");
    }
    // Nobody re-announced: the next message of each is the new user's.
    let (_eve, users) = presence(b, "eve");
    assert_eq!(users, ["alice", "bob", "eve"]);
    for (who, name) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        let on = who.recv();
        assert_eq!(
            (&on["type"], &on["userId"]),
            (&json!("USER_ONLINE"), &json!("eve")),
            "{name}"
        );
        nothing_more_presence(who, name);
    }
    let mut flo = a.ws("/stream");
    assert_eq!(
        stream_join(&mut flo, "r", "u4", "Flo"),
        json!([
            participant("u1", "Ann", false),
            participant("u2", "Bo", false),
            participant("u4", "Flo", false)
        ])
    );
    for who in [&mut ann, &mut bo] {
        assert_eq!(who.recv()["type"], "user-joined");
        nothing_more(who, "a participant");
    }
    drop(redis);
}

/// Redis stopped: within 3 s the nodes say so (`/health` 503, upgrades
/// 503); existing connections stay and get what the node alone can
/// answer, and the protocol's error for what needs Redis; within 10 s of
/// Redis returning the service is whole again, and no node was reaped for
/// the silence Redis imposed on it (here one comes back half a timeout
/// after the other).
#[test]
fn redis_stopped_then_continued() {
    let (redis, a, b) = two_nodes();
    let (mut alice, _) = presence(&a, "alice");
    let (mut bob, users) = presence(&b, "bob");
    assert_eq!(users, ["alice", "bob"]);
    alice.recv_type("USER_ONLINE");
    let mut chat_a = a.ws("/chat");
    chat_a.recv_type("system");
    let mut chat_b = b.ws("/chat");
    chat_b.recv_type("system");
    redis.signal("STOP");
    let stopped = Instant::now();
    eventually_within(
        Duration::from_secs(3),
        "503 redis down on both nodes",
        || {
            [&a, &b].iter().all(|n| {
                let (status, health) = n.health();
                status == 503 && health["redis"] == "down"
            })
        },
    );
    assert!(stopped.elapsed() < Duration::from_secs(3));
    for node in [&a, &b] {
        match try_ws_at(node.addr, "/chat", &[]) {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
            Err(e) => panic!("upgrade failed otherwise: {e}"),
            Ok(_) => panic!("an upgrade accepted while redis is down"),
        }
    }
    alice.send(r#"{"type":"PING"}"#);
    assert_eq!(alice.recv()["type"], "PONG");
    chat_a.send_json(json!({"type":"ping"}));
    assert_eq!(chat_a.recv()["type"], "pong");
    chat_a.send_json(json!({"type":"chat","payload":"lost"}));
    let refused = chat_a.recv();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"]["message"],
        "service unavailable, try again later"
    );
    // Redis returns while b is held back until half a timeout after a
    // reconnected (as a longer reconnect backoff would hold it). a cannot
    // serve meanwhile: b holds the replica a resynchronises from.
    b.signal("STOP");
    redis.signal("CONT");
    let back = Instant::now();
    eventually_within(Duration::from_secs(3), "a to reconnect", || {
        a.health().1["redis"] == "up"
    });
    std::thread::sleep(Duration::from_millis(NODE_TIMEOUT_MS / 2));
    b.signal("CONT");
    eventually_within(Duration::from_secs(10), "both nodes to serve again", || {
        [&a, &b].iter().all(|n| {
            let (status, health) = n.health();
            status == 200 && health["redis"] == "up"
        })
    });
    let (mut carol, users) = presence(&b, "carol");
    assert_eq!(users, ["alice", "bob", "carol"], "nobody was reaped");
    for (who, name) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        let on = who.recv();
        assert_eq!(
            (&on["type"], &on["userId"]),
            (&json!("USER_ONLINE"), &json!("carol")),
            "{name}"
        );
    }
    chat_b.send_json(json!({"type":"chat","payload":"back"}));
    for c in [&mut chat_a, &mut chat_b] {
        assert_eq!(c.recv_type("chat")["payload"], "back");
    }
    assert!(
        back.elapsed() < Duration::from_secs(10),
        "{:?}",
        back.elapsed()
    );
    for (who, name) in [
        (&mut alice, "alice"),
        (&mut bob, "bob"),
        (&mut carol, "carol"),
    ] {
        nothing_more_presence(who, name);
    }
}

/// Redis killed and not restarted: the same answers without it.
#[test]
fn redis_killed_leaves_local_answers() {
    let redis = RedisServer::start(None);
    let a = Node::start(&redis);
    let (mut alice, _) = presence(&a, "alice");
    let mut chat = a.ws("/chat");
    chat.recv_type("system");
    let _ = redis.kill9();
    eventually_within(Duration::from_secs(3), "503 redis down", || {
        let (status, health) = a.health();
        status == 503 && health["redis"] == "down"
    });
    alice.send(r#"{"type":"PING"}"#);
    assert_eq!(alice.recv()["type"], "PONG");
    chat.send_json(json!({"type":"ping"}));
    assert_eq!(chat.recv()["type"], "pong");
    chat.send_json(json!({"type":"chat","payload":"lost"}));
    assert_eq!(
        chat.recv()["payload"]["message"],
        "service unavailable, try again later"
    );
}

/// A cluster node's journal (its bus inputs included) replays without
/// Redis: `roomd replay --check` reproduces its run.
#[test]
fn a_cluster_node_s_journal_replays() {
    let journal = crate::live::binary::scratch_dir("cluster-journal").join("node.jsonl");
    let _ = std::fs::remove_file(&journal);
    let redis = RedisServer::start(None);
    let journal_arg = journal.to_str().expect("a UTF-8 path");
    let mut a = Node::start_with(&redis, &["--journal", journal_arg]);
    let b = Node::start(&redis);
    let mut chat_a = a.ws("/chat");
    let mut chat_b = b.ws("/chat");
    chat_a.recv_type("system");
    chat_b.recv_type("system");
    for i in 0..5 {
        chat_b.send_json(json!({"type":"chat","payload":i}));
        chat_a.send_json(json!({"type":"chat","payload":{"a":i}}));
    }
    for c in [&mut chat_a, &mut chat_b] {
        for _ in 0..10 {
            c.recv_type("chat");
        }
    }
    let mut ann = a.ws("/stream");
    stream_join(&mut ann, "r", "u1", "Ann");
    let mut bo = b.ws("/stream");
    stream_join(&mut bo, "r", "u2", "Bo");
    ann.recv_type("user-joined");
    bo.send_json(json!({"type":"chat-message","roomId":"r","userId":"u2","content":"hi"}));
    assert_eq!(ann.recv()["content"], "hi");
    let (mut alice, _) = presence(&a, "alice");
    let (bob, _) = presence(&b, "bob");
    alice.recv_type("USER_ONLINE");
    drop(bob);
    alice.recv_type("USER_OFFLINE");
    drop(bo);
    ann.recv_type("user-left");
    // Stopped with SIGTERM: its clients get 1001 (and leave at once), the
    // journal is flushed and the exit clean.
    a.signal("TERM");
    for mut c in [chat_a, ann, alice] {
        assert_eq!(c.expect_close(), 1001);
    }
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = a.process.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the node did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
    let text = std::fs::read_to_string(&journal).expect("the journal");
    assert!(text.contains("\"bus\""), "bus inputs recorded");
    let check = roomd()
        .args(["replay", "--check"])
        .arg(Path::new(&journal))
        .output()
        .expect("roomd replay");
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    // The stream message from b, as the bus delivered it, edited in a
    // copy: --check finds the divergence at that line.
    let said = r#"\\\"content\\\":\\\"hi\\\""#;
    let line = text
        .lines()
        .position(|l| l.contains(said))
        .expect("b's message on the bus")
        + 1;
    let copy = journal.with_extension("edited");
    std::fs::write(&copy, text.replacen(said, &said.replace("hi", "HI"), 1)).expect("a copy");
    let check = roomd()
        .args(["replay", "--check"])
        .arg(&copy)
        .output()
        .expect("roomd replay");
    assert_eq!(check.status.code(), Some(1), "{check:?}");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        report.starts_with(&format!("divergence at line {line} ")),
        "{report}"
    );
    let _ = std::fs::remove_file(&journal);
    let _ = std::fs::remove_file(&copy);
}

/// Runs `command`'s script as a node would, with node timeout
/// `timeout_ms`.
fn run(client: &mut TestClient, id: u64, timeout_ms: u64, command: BusCommand) -> Reply {
    let Call::Script(script, keys, args) = scripts::call("t", timeout_ms, &command) else {
        panic!("not a script");
    };
    let now = client.now();
    client.client.submit_script(id, script, keys, args, now);
    client.reply(id)
}

/// The `stale` list of a heartbeat reply.
fn stale(reply: &Reply) -> Vec<Reply> {
    match reply {
        Reply::Array(parts) => match parts.get(3) {
            Some(Reply::Array(stale)) => stale.clone(),
            other => panic!("no stale list: {other:?}"),
        },
        other => panic!("not a heartbeat reply: {other:?}"),
    }
}

/// The scripts themselves: when no node could beat for a timeout (Redis
/// paused, or every node cut off from it), the first node back finds no
/// one stale and cannot reap anyone; a node silent while another beats is
/// stale and reaped.
#[test]
fn a_silence_redis_imposed_reaps_no_one() {
    const TIMEOUT_MS: u64 = 200;
    let redis = RedisServer::start(None);
    let mut client = TestClient::new(&redis.url(0), TIMEOUT, 100);
    client.wait_up(TIMEOUT);
    let mut id = 0;
    let mut call = |client: &mut TestClient, command| {
        id += 1;
        run(client, id, TIMEOUT_MS, command)
    };
    let register = BusCommand::Register { epoch: "e".into() };
    let node = |reply: Reply| match reply {
        Reply::Array(parts) => match parts.first() {
            Some(Reply::Integer(n)) => u32::try_from(*n).expect("a node number"),
            other => panic!("no node number: {other:?}"),
        },
        other => panic!("not a register reply: {other:?}"),
    };
    let first = node(call(&mut client, register.clone()));
    let second = node(call(&mut client, register));
    let beat = |node: u32| BusCommand::Heartbeat {
        node,
        epoch: "e".into(),
        fresh_epoch: "f".into(),
    };
    let reap = |dead: u32| BusCommand::Reap {
        dead,
        timeout_ms: TIMEOUT_MS,
        event: BusEvent::Gone { node: dead, now: 0 }.encode(),
    };
    call(&mut client, beat(second));
    // Nobody beats for longer than the timeout.
    std::thread::sleep(Duration::from_millis(TIMEOUT_MS * 3 / 2));
    let back = call(&mut client, beat(first));
    assert_eq!(stale(&back), [], "nobody is stale after a silence of all");
    assert_eq!(
        call(&mut client, reap(second)),
        Reply::Integer(0),
        "not reaped"
    );
    // Now the first beats on and the second stays silent: stale, reaped.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(TIMEOUT_MS / 2));
        call(&mut client, beat(first));
    }
    let later = call(&mut client, beat(first));
    assert_eq!(
        stale(&later),
        [Reply::Bulk(second.to_string().into_bytes())]
    );
    assert!(matches!(call(&mut client, reap(second)), Reply::Integer(n) if n > 0));
}
