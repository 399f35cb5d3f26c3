//! How the reactor reads sockets: a read that does not fill its buffer ends
//! that socket's reads for the turn, yet bytes that arrive together with
//! the peer's FIN are all handled and the hangup is still seen; a burst of
//! broadcasts reaches every member whole and in order.

use crate::live::{TestServer, masked_frame, upgrade_request};
use serde_json::json;
use std::io::Write;
use std::net::{Shutdown, TcpStream};

#[test]
fn messages_sent_with_the_fin_are_handled_and_the_hangup_seen() {
    let server = TestServer::default();
    let mut a = server.ws("/stream");
    a.send_json(json!({"type": "join-room", "roomId": "r", "userId": "a", "userName": "A"}));
    a.recv_type("room-joined");
    // Request, two messages and FIN in one go: nothing is left to read
    // after them but the end of the stream.
    let mut bytes = upgrade_request("/stream", "").into_bytes();
    let join = r#"{"type":"join-room","roomId":"r","userId":"b","userName":"B"}"#;
    let chat = r#"{"type":"chat-message","roomId":"r","userId":"b","content":"bye"}"#;
    bytes.extend(masked_frame(1, join.as_bytes()));
    bytes.extend(masked_frame(1, chat.as_bytes()));
    let mut b = TcpStream::connect(server.addr).unwrap();
    b.write_all(&bytes).unwrap();
    b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(a.recv_type("user-joined")["participant"]["userId"], "b");
    assert_eq!(a.recv_type("chat-message")["content"], "bye");
    assert_eq!(a.recv_type("user-left")["userId"], "b");
}

#[test]
fn a_burst_of_broadcasts_reaches_every_member_whole_and_in_order() {
    let server = TestServer::default();
    let mut members: Vec<_> = (0..5).map(|_| server.ws("/stream")).collect();
    for (i, m) in members.iter_mut().enumerate() {
        m.send_json(
            json!({"type": "join-room", "roomId": "r", "userId": i.to_string(), "userName": "n"}),
        );
        m.recv_type("room-joined");
    }
    // 300 messages of growing size (some over 125 bytes: two frame header
    // lengths) in one write, so that many are read and framed in one turn.
    let mut burst = Vec::new();
    for n in 0..300 {
        let content = format!("{n}:{}", "x".repeat(n % 200));
        let msg = json!({"type": "chat-message", "roomId": "r", "userId": "0", "content": content});
        burst.push(msg.to_string());
    }
    for text in &burst {
        members[0]
            .ws
            .write(tungstenite::Message::text(text.clone()))
            .unwrap();
    }
    members[0].ws.flush().unwrap();
    for m in &mut members {
        for n in 0..300 {
            let got = m.recv_type("chat-message");
            let content = got["content"].as_str().unwrap_or_default();
            assert_eq!(content, format!("{n}:{}", "x".repeat(n % 200)));
        }
    }
}
