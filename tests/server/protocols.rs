//! Every protocol end to end over real sockets: two or more clients seeing
//! each other's messages, plus the engine-driven limits (binary frames,
//! heartbeats, slow consumers, rate limiting).

use crate::live::{TestServer, eventually, metric};
use roomd::server::Config;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::Message;

#[test]
fn chat_broadcasts_to_everyone_on_the_route() {
    let server = TestServer::default();
    let mut a = server.ws("/chat");
    let mut b = server.ws("/chat");
    for c in [&mut a, &mut b] {
        let hello = c.recv();
        assert_eq!(hello["type"], "system");
        assert_eq!(hello["payload"]["message"], "Connected to WebSocket server");
    }
    let payload = json!({"text": "hi", "n": [1, 2.5, null], "nested": {"k": "v"}});
    a.send_json(json!({"type": "chat", "payload": payload}));
    for c in [&mut a, &mut b] {
        let m = c.recv_type("chat");
        assert_eq!(m["payload"], payload);
        assert!(m["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    a.send_json(json!({"type": "ping"}));
    assert_eq!(a.recv_type("pong")["type"], "pong");
    a.send("not json");
    assert_eq!(
        a.recv_type("error")["payload"]["message"],
        "Invalid message format"
    );
}

#[test]
fn scratch_sessions_sync_between_members() {
    let server = TestServer::default();
    let mut a = server.ws("/scratch");
    let mut b = server.ws("/scratch");
    a.send_json(json!({"type": "join", "sessionId": "s1"}));
    let joined_a = a.recv_type("joined");
    assert_eq!(joined_a["users"], json!([]));
    let user_a = joined_a["userId"].as_str().unwrap().to_string();
    b.send_json(json!({"type": "join", "sessionId": "s1"}));
    let joined_b = b.recv_type("joined");
    assert_eq!(joined_b["users"], json!([user_a]));
    let user_b = joined_b["userId"].as_str().unwrap().to_string();
    assert_eq!(a.recv_type("user-joined")["userId"], user_b.as_str());
    let changes = json!([{"op": "set", "path": ["x"], "value": 1}]);
    b.send_json(json!({"type": "sync", "sessionId": "s1", "changes": changes}));
    let sync = a.recv_type("sync");
    assert_eq!(sync["changes"], changes);
    assert_eq!(sync["userId"], user_b.as_str());
    drop(b);
    assert_eq!(a.recv_type("user-left")["userId"], user_b.as_str());
}

#[test]
fn signal_rooms_forward_between_two_peers() {
    let server = TestServer::default();
    let mut host = server.ws("/signal");
    let mut guest = server.ws("/signal");
    host.send_json(json!({"type": "create-room"}));
    let room = host.recv_type("room-created")["roomId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(room.len(), 6);
    guest.send_json(json!({"type": "join-room", "roomId": room}));
    assert_eq!(host.recv_type("peer-joined")["roomId"], room.as_str());
    assert_eq!(guest.recv_type("peer-joined")["roomId"], room.as_str());
    let offer = json!({"type": "signal", "roomId": room, "sdp": {"type": "offer", "sdp": "v=0"}, "extra": 7});
    host.send_json(offer.clone());
    assert_eq!(guest.recv_type("signal"), offer, "forwarded verbatim");
    let mut third = server.ws("/signal");
    third.send_json(json!({"type": "join-room", "roomId": room}));
    assert_eq!(
        third.recv_type("error")["message"],
        "Room not found or full"
    );
    drop(guest);
    assert_eq!(host.recv_type("peer-left")["roomId"], room.as_str());
}

#[test]
fn presence_announces_users_per_route() {
    let server = TestServer::default();
    let mut alice = server.ws("/presence?userId=alice");
    let est = alice.recv();
    assert_eq!(est["type"], "CONNECTION_ESTABLISHED");
    assert_eq!(est["userId"], "alice");
    assert_eq!(alice.recv()["type"], "ONLINE_USERS");
    let mut other_route = server.ws("/ws-online-status?userId=carol");
    assert_eq!(other_route.recv()["type"], "CONNECTION_ESTABLISHED");
    let mut bob = server.ws("/presence?userId=42");
    assert_eq!(bob.recv()["type"], "CONNECTION_ESTABLISHED");
    let online = bob.recv();
    assert_eq!(online["type"], "ONLINE_USERS");
    let ids = online["userIds"].as_array().unwrap();
    assert!(
        ids.contains(&json!("alice")) && ids.contains(&json!(42)),
        "{online}"
    );
    assert!(
        !ids.contains(&json!("carol")),
        "routes are separate namespaces"
    );
    let on = alice.recv_type("USER_ONLINE");
    assert_eq!(on["userId"], 42, "numeric ids are numbers");
    // A second connection of alice's: one more connection, no more users.
    let mut alice2 = server.ws("/presence?userId=alice");
    assert_eq!(alice2.recv()["type"], "CONNECTION_ESTABLISHED");
    // The gauges of the presence `stats:` log line, per route.
    let gauge = |name: &str, path: &str| {
        metric(
            &server,
            &format!("{name}{{protocol=\"presence\",path=\"{path}\"}}"),
        )
    };
    assert_eq!(gauge("roomd_route_users", "/presence"), 2);
    assert_eq!(gauge("roomd_route_connections", "/presence"), 3);
    assert_eq!(gauge("roomd_route_users", "/ws-online-status"), 1);
    assert_eq!(gauge("roomd_route_connections", "/ws-online-status"), 1);
    bob.send_json(json!({"type": "PING"}));
    assert_eq!(bob.recv_type("PONG")["type"], "PONG");
    drop(bob);
    assert_eq!(alice.recv_type("USER_OFFLINE")["userId"], 42);
    assert_eq!(gauge("roomd_route_users", "/presence"), 1);
    assert_eq!(gauge("roomd_route_connections", "/presence"), 2);
}

#[test]
fn stream_rooms_track_participants() {
    let server = TestServer::default();
    let mut a = server.ws("/stream");
    let mut b = server.ws("/stream");
    a.send_json(json!({"type": "join-room", "roomId": "r", "userId": "u1", "userName": "Ann"}));
    let joined = a.recv_type("room-joined");
    assert_eq!(
        joined["participants"],
        json!([{"userId": "u1", "userName": "Ann", "isStreaming": false}])
    );
    b.send_json(json!({"type": "join-room", "roomId": "r", "userId": "u2", "userName": "Bo"}));
    assert_eq!(
        b.recv_type("room-joined")["participants"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(a.recv_type("user-joined")["participant"]["userId"], "u2");
    a.send_json(json!({"type": "start-streaming", "roomId": "r", "userId": "u1"}));
    for c in [&mut a, &mut b] {
        assert_eq!(c.recv_type("user-streaming-started")["userId"], "u1");
    }
    b.send_json(json!({"type": "chat-message", "roomId": "r", "userId": "u2", "content": "hey"}));
    for c in [&mut a, &mut b] {
        let m = c.recv_type("chat-message");
        assert_eq!(
            (m["userName"].as_str(), m["content"].as_str()),
            (Some("Bo"), Some("hey"))
        );
    }
    b.send_json(json!({"type": "chat-message", "roomId": "r", "userId": "u1", "content": "spoof"}));
    assert_eq!(
        b.recv_type("error")["message"],
        "userId does not match this connection"
    );
    drop(b);
    assert_eq!(a.recv_type("user-left")["userId"], "u2");
}

#[test]
fn binary_frame_closes_1003() {
    let server = TestServer::default();
    let mut a = server.ws("/chat");
    a.ws.send(Message::Binary(vec![1, 2, 3].into())).unwrap();
    assert_eq!(a.expect_close(), 1003);
}

/// A WebSocket opened by hand that never reads (so never answers pings).
fn raw_websocket(server: &TestServer, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(crate::live::TIMEOUT)).unwrap();
    s.write_all(crate::live::upgrade_request(path, "").as_bytes())
        .unwrap();
    s
}

#[test]
fn silent_client_is_terminated_within_two_intervals() {
    let interval = Duration::from_millis(400);
    let server = TestServer::start(Config {
        heartbeat_interval: interval,
        ..Config::default()
    });
    // A client that keeps reading (tungstenite answers pings as it reads)
    // must stay connected meanwhile.
    let mut responsive = server.ws("/chat");
    responsive
        .ws
        .get_mut()
        .set_read_timeout(Some(interval / 4))
        .unwrap();
    let keep_reading = std::thread::spawn(move || {
        let until = Instant::now() + 5 * interval;
        while Instant::now() < until {
            match responsive.ws.read() {
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    });
    let mut silent = raw_websocket(&server, "/chat");
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match silent.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(start.elapsed() < crate::live::TIMEOUT, "never dropped"),
        }
    }
    let took = start.elapsed();
    assert!(took >= interval, "dropped too early: {took:?}");
    assert!(
        took <= 2 * interval + Duration::from_millis(350),
        "dropped after {took:?}"
    );
    assert_eq!(
        keep_reading.join().unwrap(),
        Ok(()),
        "the responsive client stays"
    );
}

/// A client in scratch session `s` that never reads, with a tiny receive
/// buffer; `reader` (already in `s`) sees it join.
fn slow_consumer(server: &TestServer, reader: &mut crate::live::Client) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut slow: TcpStream = socket.into();
    slow.set_read_timeout(Some(crate::live::TIMEOUT)).unwrap();
    slow.write_all(crate::live::upgrade_request("/scratch", "").as_bytes())
        .unwrap();
    // It joins with a hand-made masked frame.
    slow.write_all(&crate::live::masked_frame(
        0x1,
        crate::live::JOIN_SESSION_S.as_bytes(),
    ))
    .unwrap();
    reader.recv_type("user-joined");
    slow
}

/// Sends `N` numbered 3 kB syncs from `sender` into session `s` and checks
/// that `reader` gets every one, in order.
fn flood_while_reader_gets_everything(
    mut sender: crate::live::Client,
    mut reader: crate::live::Client,
) {
    const N: usize = 3000;
    let filler = "x".repeat(3000);
    let reading = std::thread::spawn(move || {
        let mut seen = 0;
        while seen < N {
            let m = reader.recv_type("sync");
            assert_eq!(m["changes"]["seq"], seen, "in order, none lost");
            seen += 1;
        }
        seen
    });
    for seq in 0..N {
        sender.send_json(
            json!({"type": "sync", "sessionId": "s", "changes": {"seq": seq, "filler": filler}}),
        );
    }
    assert_eq!(reading.join().expect("reader got everything"), N);
}

fn join_s(c: &mut crate::live::Client) {
    c.send_json(json!({"type": "join", "sessionId": "s"}));
    c.recv_type("joined");
}

#[test]
fn slow_consumer_is_dropped_while_others_get_everything() {
    let server = TestServer::start(Config {
        max_outbound_bytes: 64 * 1024,
        rate_limit: 0,
        ..Config::default()
    });
    let mut reader = server.ws("/scratch");
    let mut sender = server.ws("/scratch");
    join_s(&mut reader);
    let slow = slow_consumer(&server, &mut reader);
    join_s(&mut sender);
    flood_while_reader_gets_everything(sender, reader);
    eventually("the slow consumer to be dropped", || {
        metric(&server, "roomd_slow_consumer_drops_total") == 1
    });
    drop(slow);
}

#[test]
fn queues_over_the_total_budget_are_dropped_largest_first() {
    // Each queue alone is allowed 1 GiB; all together only 256 KiB.
    let server = TestServer::start(Config {
        max_outbound_bytes: 1 << 30,
        max_total_outbound_bytes: 256 * 1024,
        rate_limit: 0,
        ..Config::default()
    });
    let mut reader = server.ws("/scratch");
    let mut sender = server.ws("/scratch");
    join_s(&mut reader);
    let slow = [
        slow_consumer(&server, &mut reader),
        slow_consumer(&server, &mut reader),
    ];
    join_s(&mut sender);
    flood_while_reader_gets_everything(sender, reader);
    eventually("both slow consumers to be dropped", || {
        metric(&server, "roomd_slow_consumer_drops_total") == 2
    });
    drop(slow);
}

/// A client that keeps sending faster than the limit for
/// `--rate-limit-close-after` (here 1 s rather than the default 10 s) is
/// closed with 1008; a client at the same time within the limit is not.
#[test]
fn sustained_excess_closes_1008_after_the_configured_time() {
    let close_after = Duration::from_secs(1);
    let server = TestServer::start(Config {
        rate_limit: 5,
        rate_limit_close_after: close_after,
        ..Config::default()
    });
    let mut flooder = server.ws("/chat");
    let mut calm = server.ws("/chat");
    for c in [&mut flooder, &mut calm] {
        c.recv_type("system");
        c.ws.get_mut()
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
    }
    let started = Instant::now();
    let mut calm_sent = 0u32;
    let code = loop {
        let elapsed = started.elapsed();
        assert!(elapsed < crate::live::TIMEOUT, "no close after {elapsed:?}");
        // 20 messages a second against a limit of 5.
        flooder.send_json(json!({"type": "ping"}));
        // 2 a second: within the limit.
        if elapsed.as_millis() as u32 / 500 >= calm_sent {
            calm.send_json(json!({"type": "ping"}));
            calm_sent += 1;
        }
        let _ = calm.ws.read();
        match flooder.ws.read() {
            Ok(Message::Close(Some(frame))) => break u16::from(frame.code),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
        std::thread::sleep(Duration::from_millis(30));
    };
    let elapsed = started.elapsed();
    assert_eq!(code, 1008);
    assert!(elapsed >= close_after, "closed after only {elapsed:?}");
    calm.ws
        .get_mut()
        .set_read_timeout(Some(crate::live::TIMEOUT))
        .unwrap();
    calm.send_json(json!({"type": "ping"}));
    calm.recv_type("pong");
}

#[test]
fn rate_limit_refuses_excess_messages() {
    let server = TestServer::start(Config {
        rate_limit: 5,
        ..Config::default()
    });
    let mut a = server.ws("/chat");
    a.recv_type("system");
    for _ in 0..40 {
        a.send_json(json!({"type": "ping"}));
    }
    let (mut pongs, mut limited) = (0, 0);
    for _ in 0..40 {
        let m = a.recv();
        if m["type"] == "pong" {
            pongs += 1;
        } else if m.to_string().contains("rate limit exceeded") {
            limited += 1;
        }
    }
    assert!(pongs <= 14, "{pongs} pongs for a burst of 10");
    assert!(pongs >= 10, "the burst passes: {pongs}");
    assert_eq!(pongs + limited, 40);
    assert!(metric(&server, "roomd_rate_limited_total{protocol=\"chat\"}") >= 28);
}
