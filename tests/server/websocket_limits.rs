//! WebSocket-level limits and the close handshake, over real sockets.

use crate::live::{TestServer, eventually, metric};
use roomd::server::Config;
use std::io::{Read, Write};
use std::net::TcpStream;
use tungstenite::Message;

#[test]
fn oversized_message_closes_1009() {
    let server = TestServer::start(Config {
        max_message_size: 1024,
        ..Config::default()
    });
    let mut client = server.ws("/chat");
    client.ws.send(Message::text("x".repeat(4096))).unwrap();
    assert_eq!(client.expect_close(), 1009);
    eventually("the socket to go", || {
        metric(&server, "roomd_websockets_open") == 0
    });
}

/// Opens a WebSocket by hand, sends `frame` in the same packet as the
/// request, and returns the close code the server answers with.
fn raw_close_code(server: &TestServer, frame: &[u8]) -> u16 {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(crate::live::TIMEOUT)).unwrap();
    let mut bytes = crate::live::upgrade_request("/chat", "").into_bytes();
    bytes.extend_from_slice(frame);
    s.write_all(&bytes).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf).expect("answer before the timeout");
        assert!(
            n > 0,
            "closed without a close frame: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            assert!(text.starts_with("HTTP/1.1 101"), "{text}");
            // Skip the frames before the close frame (e.g. a greeting);
            // server frames here are short: 2-byte header + payload.
            let mut frames = &got[end + 4..];
            while frames.len() >= 2 && frames.len() >= 2 + (frames[1] & 0x7f) as usize {
                let len = 2 + (frames[1] & 0x7f) as usize;
                if frames[0] == 0x88 && len >= 4 {
                    return u16::from_be_bytes([frames[2], frames[3]]);
                }
                frames = &frames[len..];
            }
        }
    }
}

#[test]
fn invalid_utf8_closes_1007_and_protocol_errors_1002() {
    let server = TestServer::default();
    assert_eq!(
        raw_close_code(&server, &crate::live::masked_frame(0x1, &[0xc3, 0x28])),
        1007
    );
    let unmasked = [0x81, 0x01, b'a'];
    assert_eq!(raw_close_code(&server, &unmasked), 1002);
    assert_eq!(
        raw_close_code(&server, &crate::live::masked_frame(0x3, b"")),
        1002,
        "reserved opcode"
    );
    eventually("sockets to go", || {
        metric(&server, "roomd_websockets_open") == 0
    });
}

#[test]
fn client_close_handshake_completes() {
    let server = TestServer::default();
    let mut a = server.ws("/chat");
    let _b = server.ws("/chat");
    assert_eq!(metric(&server, "roomd_websockets_open"), 2);
    a.ws.close(None).unwrap();
    loop {
        match a.ws.read() {
            Ok(Message::Close(_)) => break,
            Ok(_) => continue,
            Err(e) => panic!("close not echoed: {e}"),
        }
    }
    assert!(a.is_gone(), "server closes the TCP connection");
    eventually("the count to drop", || {
        metric(&server, "roomd_websockets_open") == 1
    });
}

#[test]
fn client_pings_are_answered() {
    let server = TestServer::default();
    let mut a = server.ws("/chat");
    a.ws.send(Message::Ping(b"hi".to_vec().into())).unwrap();
    loop {
        match a.ws.read().expect("pong before the timeout") {
            Message::Pong(data) => {
                assert_eq!(&data[..], b"hi");
                break;
            }
            _ => continue,
        }
    }
}

/// Many clients each sending part of a large message could together hold
/// `max_connections` x `max_message_size` bytes; past the total budget the
/// connection holding the most is closed with 1009, and the others carry on.
#[test]
fn incomplete_messages_over_the_total_budget_close_the_largest_1009() {
    use crate::live::raw::{Raw, frame};
    let server = TestServer::start(Config {
        max_message_size: 64 * 1024,
        max_total_inbound_bytes: 100 * 1024,
        ..Config::default()
    });
    let chat = |size: usize| {
        let text = serde_json::json!({"type": "chat", "payload": "x".repeat(size)}).to_string();
        frame(true, 0x1, text.as_bytes())
    };
    let ping = frame(true, 0x1, br#"{"type":"ping"}"#);
    let (big, middle, small) = (chat(60_000), chat(60_000), chat(30_000));
    let mut a = Raw::upgrade(server.addr, "/chat", &[]);
    let mut b = Raw::upgrade(server.addr, "/chat", &[]);
    let mut c = Raw::upgrade(server.addr, "/chat", &[]);
    for raw in [&mut a, &mut b, &mut c] {
        assert_eq!(raw.json()["type"], "system");
    }
    a.send(&big[..50_000]);
    b.send(&middle[..40_000]);
    // 90 KB held: within the budget, nobody is closed.
    c.send(&ping);
    assert_eq!(c.json()["type"], "pong");
    assert_eq!(metric(&server, "roomd_inbound_budget_closes_total"), 0);
    // 110 KB: the largest holder goes.
    c.send(&small[..20_000]);
    assert_eq!(a.close_code(), 1009);
    for (raw, message) in [(&mut b, &middle[40_000..]), (&mut c, &small[20_000..])] {
        raw.send(message);
        raw.send(&ping);
        loop {
            let m = raw.json();
            if m["type"] == "pong" {
                break;
            }
        }
    }
    assert_eq!(metric(&server, "roomd_inbound_budget_closes_total"), 1);
}
