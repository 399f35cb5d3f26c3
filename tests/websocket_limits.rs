//! WebSocket-level limits and the close handshake, over real sockets.
// End-to-end tests wait on real time.
#![allow(clippy::disallowed_methods)]

mod live;

use live::{TestServer, eventually, metric};
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
    s.set_read_timeout(Some(live::TIMEOUT)).unwrap();
    let mut bytes = live::upgrade_request("/chat", "").into_bytes();
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
        raw_close_code(&server, &live::masked_frame(0x1, &[0xc3, 0x28])),
        1007
    );
    let unmasked = [0x81, 0x01, b'a'];
    assert_eq!(raw_close_code(&server, &unmasked), 1002);
    assert_eq!(
        raw_close_code(&server, &live::masked_frame(0x3, b"")),
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
