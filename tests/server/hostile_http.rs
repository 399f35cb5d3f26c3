//! Hostile HTTP requests over real sockets: requests split into single
//! bytes, long URLs, bytes that are not UTF-8, HTTP/1.0, bad handshake
//! keys, silent clients. Each gets a documented status (or is dropped after
//! the request timeout) and other connections are unaffected.

use crate::live::raw::Raw;
use crate::live::{TestServer, metric};
use roomd::server::Config;
use std::time::{Duration, Instant};

fn status_of(server: &TestServer, request: &[u8]) -> u16 {
    let mut raw = Raw::connect(server.addr);
    raw.send(request);
    raw.answer().0
}

#[test]
fn a_request_one_byte_per_write_is_answered() {
    let server = TestServer::default();
    let mut raw = Raw::connect(server.addr);
    let mut request = b"GET /health HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..30 {
        request.extend_from_slice(format!("X-Header-{i}: {}\r\n", "v".repeat(100)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    raw.send_bytewise(&request);
    let (status, text) = raw.answer();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"status\":\"ok\""));
}

#[test]
fn long_urls_are_routed_until_the_head_limit() {
    let server = TestServer::default();
    let long = format!("/{}", "a".repeat(7_000));
    assert_eq!(server.get(&long).0, 404);
    let query = format!("/health?{}", "q=1&".repeat(1_700));
    assert_eq!(server.get(&query).0, 200, "query strings are ignored");
    let user = "u".repeat(128);
    let mut raw = Raw::upgrade(
        server.addr,
        &format!("/presence?pad={}&userId={user}", "p".repeat(6_000)),
        b"",
    );
    assert_eq!(raw.json()["type"], "CONNECTION_ESTABLISHED");
    assert_eq!(raw.json()["userIds"][0], user);
    let too_long_id = format!("/presence?userId={}", "u".repeat(129));
    let (status, _, body) = server.http(&crate::live::upgrade_request(&too_long_id, ""));
    assert_eq!(
        (status, body.as_str()),
        (400, "userId longer than 128 characters")
    );
    let too_long = format!("/{}", "a".repeat(9_000));
    assert_eq!(server.get(&too_long).0, 431);
    assert_eq!(server.get(&format!("/health?{}", "q".repeat(9_000))).0, 431);
}

#[test]
fn bytes_that_are_not_utf8_are_refused_or_ignored() {
    let server = TestServer::start(Config {
        allow_origins: vec!["http://good.example".into()],
        ..Config::default()
    });
    // In a header value (obs-text): an unreadable header is never a match.
    let origin = [
        crate::live::upgrade_request("/chat", "")
            .trim_end()
            .as_bytes(),
        b"\r\nOrigin: http://good.example\xff\r\n\r\n",
    ]
    .concat();
    assert_eq!(status_of(&server, &origin), 403, "unreadable Origin");
    let header = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Junk: \xc3\x28\xff\r\n\r\n";
    assert_eq!(status_of(&server, header), 200, "other headers are ignored");
    // In the request line and header names: not HTTP.
    assert_eq!(status_of(&server, b"GET /\xff\xfe HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(status_of(&server, b"G\xc3\xa9T / HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(
        status_of(&server, b"GET /health HTTP/1.1\r\nX-\xff: 1\r\n\r\n"),
        400
    );
    assert_eq!(server.get("/health").0, 200);
}

#[test]
fn too_many_headers_get_431_and_pipelined_requests_one_answer() {
    let server = TestServer::default();
    let headers: String = (0..40).map(|i| format!("X-{i}: v\r\n")).collect();
    let request = format!("GET /health HTTP/1.1\r\n{headers}\r\n");
    assert_eq!(status_of(&server, request.as_bytes()), 431);
    let mut raw = Raw::connect(server.addr);
    raw.send(b"GET /health HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
    let (status, text) = raw.answer();
    assert_eq!(status, 200);
    assert_eq!(
        text.matches("HTTP/1.1").count(),
        1,
        "one request per connection"
    );
}

#[test]
fn http_1_0_requests() {
    let server = TestServer::default();
    let (status, text) = {
        let mut raw = Raw::connect(server.addr);
        raw.send(b"GET /api/ping HTTP/1.0\r\n\r\n");
        raw.answer()
    };
    assert_eq!(status, 200);
    assert!(text.contains("WebSocket signaling server is running"));
    // RFC 6455 requires HTTP/1.1 for the opening handshake.
    let upgrade = crate::live::upgrade_request("/chat", "").replace("HTTP/1.1", "HTTP/1.0");
    assert_eq!(status_of(&server, upgrade.as_bytes()), 400);
    assert_eq!(status_of(&server, b"GET /health HTTP/2.0\r\n\r\n"), 400);
}

#[test]
fn a_websocket_key_of_the_wrong_length_is_refused() {
    let server = TestServer::default();
    let good = crate::live::upgrade_request("/chat", "");
    for key in [
        "",
        "x",
        "dGhlIHNhbXBsZSBub25jZQ",
        "dGhlIHNhbXBsZSBub25jZQ===",
        "dGhlIHNhbXBsZSBub25jZQ==dGhl",
        "!!!!!!!!!!!!!!!!!!!!!!==",
        &"A".repeat(2_000),
    ] {
        let request = good.replace("dGhlIHNhbXBsZSBub25jZQ==", key);
        assert_eq!(status_of(&server, request.as_bytes()), 400, "key {key:?}");
    }
    assert_eq!(
        metric(&server, "roomd_rejected_upgrades_total{status=\"400\"}"),
        7
    );
    let mut ok = Raw::upgrade(server.addr, "/chat", b"");
    assert_eq!(ok.json()["type"], "system");
}

#[test]
fn a_client_that_sends_nothing_is_dropped_after_the_request_timeout() {
    let server = TestServer::start(Config {
        request_timeout: Duration::from_millis(300),
        ..Config::default()
    });
    let start = Instant::now();
    let mut silent = Raw::connect(server.addr);
    let mut busy = server.ws("/chat");
    assert!(silent.ends(), "dropped");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(300), "too early: {took:?}");
    assert!(took < Duration::from_secs(3), "too late: {took:?}");
    busy.send_json(serde_json::json!({"type": "ping"}));
    assert_eq!(busy.recv_type("pong")["type"], "pong", "others unaffected");
    assert_eq!(metric(&server, "roomd_request_timeouts_total"), 1);
}
