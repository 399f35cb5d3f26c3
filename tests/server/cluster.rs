//! Cluster mode end to end: a `redis-server` of the test's own and
//! several `roomd` binaries on it, clients spread over the nodes
//! (CLUSTER.md "How it is tested").

use crate::live::binary::{KillOnDrop, roomd, spawn};
use crate::live::redis::RedisServer;
use crate::live::{Client, TIMEOUT, eventually_within, http, ws_at};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

/// The node timeout the tests run with.
const NODE_TIMEOUT_MS: u64 = 1_000;

/// A roomd node of the cluster.
struct Node {
    process: KillOnDrop,
    addr: SocketAddr,
}

impl Node {
    /// Starts a node on `redis` and waits until it serves.
    fn start(redis: &RedisServer) -> Node {
        let mut command = roomd();
        command.args(["--listen", "127.0.0.1:0", "--log-level", "info"]);
        command.args(["--redis", &redis.url(0)]);
        command.args(["--node-timeout", &format!("{NODE_TIMEOUT_MS}ms")]);
        let spawned = spawn(command);
        let node = Node {
            process: KillOnDrop(spawned.child),
            addr: spawned.addr,
        };
        node.wait_ready();
        node
    }

    fn health(&self) -> (u16, serde_json::Value) {
        let (status, _, body) = http(self.addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        (status, serde_json::from_str(&body).expect("JSON health"))
    }

    fn wait_ready(&self) {
        eventually_within(TIMEOUT, "the node to serve", || self.health().0 == 200);
    }

    fn ws(&self, path: &str) -> Client {
        ws_at(self.addr, path)
    }

    fn pid(&self) -> u32 {
        self.process.0.id()
    }
}

#[test]
fn chat_broadcasts_reach_every_node_in_one_order() {
    let redis = RedisServer::start(None);
    let (a, b) = (Node::start(&redis), Node::start(&redis));
    let mut on_a = a.ws("/chat");
    let mut on_b = b.ws("/chat");
    on_a.recv_type("system");
    on_b.recv_type("system");
    for i in 0..20 {
        on_a.send_json(json!({"type":"chat","payload":{"from":"a","n":i}}));
        on_b.send_json(json!({"type":"chat","payload":{"from":"b","n":i}}));
    }
    let read = |c: &mut Client| -> Vec<serde_json::Value> {
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

#[test]
fn presence_is_cluster_wide_and_a_killed_node_s_users_go_offline() {
    let redis = RedisServer::start(None);
    let (a, b) = (Node::start(&redis), Node::start(&redis));
    let mut alice = a.ws("/presence?userId=alice");
    alice.recv_type("CONNECTION_ESTABLISHED");
    alice.recv_type("ONLINE_USERS");
    let mut bob = b.ws("/presence?userId=bob");
    bob.recv_type("CONNECTION_ESTABLISHED");
    let online = bob.recv_type("ONLINE_USERS");
    assert_eq!(online["userIds"], json!(["alice", "bob"]));
    assert_eq!(alice.recv_type("USER_ONLINE")["userId"], "bob");
    // alice on b too: killing a must not take her offline.
    let mut alice2 = b.ws("/presence?userId=alice");
    alice2.recv_type("ONLINE_USERS");
    let mut carol = a.ws("/presence?userId=carol");
    carol.recv_type("ONLINE_USERS");
    assert_eq!(bob.recv_type("USER_ONLINE")["userId"], "carol");
    let killed = std::time::Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-9", &a.pid().to_string()])
        .status();
    let offline = bob.recv_type("USER_OFFLINE");
    assert_eq!(offline["userId"], "carol");
    assert!(
        killed.elapsed() < Duration::from_millis(NODE_TIMEOUT_MS + 1_500),
        "carol reaped in {:?}",
        killed.elapsed()
    );
    bob.send(r#"{"type":"PING"}"#);
    assert_eq!(
        bob.recv()["type"],
        "PONG",
        "no other message (no USER_OFFLINE for alice)"
    );
    drop(alice);
}
