//! A thousand connections opening and closing every way a client can (clean
//! close, abrupt drop, reset, silence, half a request, plain HTTP) while a
//! session keeps working: nothing is lost, and nothing leaks.

use crate::live::raw::{Raw, frame};
use crate::live::{TestServer, eventually, metric};
use roomd::server::Config;
use serde_json::json;
use std::time::Duration;

const CHURN: usize = 1000;
const MESSAGES: usize = 300;

/// One short-lived connection of kind `i % 6`.
fn churn_once(server: &TestServer, i: usize) {
    let join = frame(true, 0x1, crate::live::JOIN_SESSION_S.as_bytes());
    match i % 6 {
        // Joins the session, then closes cleanly.
        0 => {
            let mut c = server.ws("/scratch");
            c.send_json(json!({"type": "join", "sessionId": "s"}));
            c.recv_type("joined");
            c.ws.close(None).unwrap();
            while c.ws.read().is_ok() {}
        }
        // Joins the session in the handshake's write, then vanishes.
        1 => drop(Raw::upgrade(server.addr, "/scratch", &join)),
        // Joins, then resets the connection.
        2 => {
            let raw = Raw::upgrade(server.addr, "/scratch", &join);
            socket2::SockRef::from(&raw.stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        // Connects and says nothing.
        3 => drop(Raw::connect(server.addr)),
        // Half a request head.
        4 => Raw::connect(server.addr).send(b"GET /scratch HTTP/1.1\r\nUpgr"),
        // A plain HTTP request.
        _ => assert_eq!(server.get("/health").0, 200),
    }
}

#[test]
fn a_thousand_connections_come_and_go_while_a_session_loses_nothing() {
    let server = TestServer::start(Config {
        rate_limit: 0,
        ..Config::default()
    });
    let (mut receiver, mut sender, sender_id) = crate::live::scratch_pair(&server);
    let receiving = std::thread::spawn(move || {
        let mut seen = 0;
        while seen < MESSAGES {
            let m = receiver.recv_type("sync");
            if m["userId"] == sender_id {
                assert_eq!(m["changes"]["seq"], seen, "in order, none lost");
                seen += 1;
            }
        }
        receiver
    });
    std::thread::scope(|s| {
        s.spawn(|| (0..CHURN).for_each(|i| churn_once(&server, i)));
        for seq in 0..MESSAGES {
            sender.send_json(json!({"type": "sync", "sessionId": "s", "changes": {"seq": seq}}));
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let mut receiver = receiving.join().expect("the receiver got every message");
    // Back to the baseline: the two members, and the socket asking.
    eventually("every churned socket to be released", || {
        metric(&server, "roomd_sockets_open") == 3
    });
    assert_eq!(metric(&server, "roomd_websockets_open"), 2);
    let (_, _, health) = server.get("/health");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["connections"], 2);
    assert_eq!(health["rooms"], 1);
    assert!(metric(&server, "roomd_accepted_connections_total") >= CHURN as u64);
    // The session still works both ways.
    receiver.send_json(json!({"type": "sync", "sessionId": "s", "changes": "back"}));
    assert_eq!(sender.recv_type("sync")["changes"], "back");
}
