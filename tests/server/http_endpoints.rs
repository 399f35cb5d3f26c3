//! The HTTP side of every listener: endpoints, CORS, refusals.

use crate::live::{TestServer, metric};
use roomd::server::Config;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn upgrade(path: &str, extra: &str) -> String {
    crate::live::upgrade_request(path, extra)
}

#[test]
fn endpoints_answer_with_their_bodies() {
    let server = TestServer::default();
    let (status, head, body) = server.get("/health");
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: application/json"));
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert!(health["uptimeSeconds"].is_u64());
    assert_eq!(health["connections"], 0);
    for p in ["scratch", "signal", "presence", "chat", "stream"] {
        assert_eq!(health["protocols"][p]["connections"], 0, "{p}");
    }

    let (status, _, body) = server.get("/api/ping");
    assert_eq!(status, 200);
    let ping: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ping["message"], "WebSocket signaling server is running");
    assert_eq!(ping["clientsConnected"], 0);
    assert_eq!(ping["roomsActive"], 0);

    let (status, head, body) = server.get("/metrics");
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"));
    assert!(body.contains("# TYPE roomd_connections gauge\n"));
    assert!(body.contains("roomd_messages_in_total{protocol=\"chat\"} 0\n"));

    let (status, _, body) = server.get("/chat");
    assert_eq!(
        (status, body.as_str()),
        (200, "WebSocket server is running")
    );
    assert_eq!(server.get("/nope").0, 404);
    assert_eq!(server.get("/Chat").0, 404, "paths are case-sensitive");
    assert_eq!(
        server.http(&upgrade("/nope", "")).0,
        404,
        "upgrade on an unknown path"
    );
    let (status, head, _) =
        server.http("POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, 405);
    assert!(head.contains("Allow: GET, OPTIONS"));
    assert_eq!(server.http("garbage\r\n\r\n").0, 400);
    assert!(metric(&server, "roomd_http_requests_total") >= 8);
    assert_eq!(
        metric(&server, "roomd_rejected_upgrades_total{status=\"404\"}"),
        1
    );
}

#[test]
fn cors_and_origin_allow_list() {
    let server = TestServer::start(Config {
        allow_origins: vec!["http://good.example".into()],
        ..Config::default()
    });
    let (status, head, _) =
        server.http("OPTIONS /api/ping HTTP/1.1\r\nHost: x\r\nOrigin: http://good.example\r\nAccess-Control-Request-Method: GET\r\n\r\n");
    assert_eq!(status, 204);
    assert!(head.contains("Access-Control-Allow-Origin: http://good.example"));
    assert!(head.contains("Access-Control-Allow-Methods: GET, OPTIONS"));
    let (_, head, _) = server.http("GET /health HTTP/1.1\r\nOrigin: http://good.example\r\n\r\n");
    assert!(head.contains("Access-Control-Allow-Origin: http://good.example\r\nVary: Origin"));
    let (_, head, _) = server.http("GET /health HTTP/1.1\r\nOrigin: http://evil.example\r\n\r\n");
    assert!(!head.contains("Access-Control-Allow-Origin"));

    let evil = [("Origin", "http://evil.example")];
    match server.try_ws("/chat", &evil) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    assert!(
        server
            .try_ws("/chat", &[("Origin", "http://good.example")])
            .is_ok()
    );
    assert!(
        server.try_ws("/chat", &[]).is_ok(),
        "no Origin: a non-browser client"
    );
    assert_eq!(
        metric(&server, "roomd_rejected_upgrades_total{status=\"403\"}"),
        1
    );
}

#[test]
fn bad_handshakes_are_refused() {
    let server = TestServer::default();
    let (status, _, _) = server.http(&upgrade("/presence", ""));
    assert_eq!(status, 400, "presence without userId");
    assert_eq!(server.http(&upgrade("/presence?userId=", "")).0, 400);
    let (status, head, _) = server.http(&upgrade("/chat", "").replace("Version: 13", "Version: 8"));
    assert_eq!(status, 426);
    assert!(head.contains("Sec-WebSocket-Version: 13"));
    let no_key = "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(server.http(no_key).0, 400);
    assert!(server.try_ws("/presence?userId=alice", &[]).is_ok());
}

#[test]
fn connection_limit_answers_503() {
    let server = TestServer::start(Config {
        max_connections: 2,
        ..Config::default()
    });
    let _a = server.ws("/chat");
    let _b = server.ws("/chat");
    match server.try_ws("/chat", &[]) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    assert_eq!(metric(&server, "roomd_websockets_open"), 2);
    assert_eq!(server.get("/health").0, 200, "plain HTTP still answered");
    drop(_a);
    crate::live::eventually("a slot to free up", || {
        metric(&server, "roomd_websockets_open") == 1
    });
    assert!(server.try_ws("/chat", &[]).is_ok());
}

#[test]
fn slow_loris_is_dropped() {
    let server = TestServer::start(Config {
        request_timeout: Duration::from_millis(300),
        ..Config::default()
    });
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(crate::live::TIMEOUT)).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost:").unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "dropped without an answer");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(metric(&server, "roomd_request_timeouts_total"), 1);
}

#[test]
fn oversized_request_head_is_refused() {
    let server = TestServer::default();
    let big = format!(
        "GET /health HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    assert_eq!(server.http(&big).0, 431);
}

#[test]
fn configured_routes_replace_the_defaults() {
    use roomd::protocol::Protocol;
    use roomd::server::config::Route;
    let route = Route {
        path: "/".into(),
        protocol: Protocol::Stream,
    };
    let server = TestServer::start(Config {
        routes: vec![route],
        ..Config::default()
    });
    let mut client = server.ws("/?ignored=query");
    client.send_json(
        serde_json::json!({"type": "join-room", "roomId": "r", "userId": "u", "userName": "n"}),
    );
    assert_eq!(client.recv_type("room-joined")["roomId"], "r");
    assert_eq!(server.get("/chat").0, 404, "defaults are gone");
    assert_eq!(server.get("/health").0, 200, "HTTP endpoints stay");
}
