//! `chat`: welcome, ping, auth, broadcast, echo, errors, isolation.

use crate::common::{Harness, TS0};
use roomd::protocol::Protocol::Chat;

fn welcome() -> String {
    format!(
        r#"{{"type":"system","payload":{{"message":"Connected to WebSocket server"}},"timestamp":"{TS0}"}}"#
    )
}

#[test]
fn open_sends_the_welcome() {
    let mut h = Harness::new();
    let a = h.connect(Chat);
    h.expect(a, &[&welcome()]);
    let b = h.connect(Chat);
    h.expect(b, &[&welcome()]);
    h.expect_nothing(a);
}

#[test]
fn ping_and_auth_reply_to_the_sender() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(Chat), h.connect(Chat));
    h.received(a);
    h.received(b);
    h.send(a, r#"{"type":"ping"}"#);
    h.expect(a, &[&format!(r#"{{"type":"pong","timestamp":"{TS0}"}}"#)]);
    h.send(a, r#"{"type":"auth","payload":{"token":"t"}}"#);
    h.expect(
        a,
        &[&format!(r#"{{"type":"auth","payload":{{"success":true,"message":"Authenticated"}},"timestamp":"{TS0}"}}"#)],
    );
    h.expect_nothing(b);
}

#[test]
fn chat_goes_to_every_connection_on_the_route_verbatim() {
    let mut h = Harness::new();
    let (a, b, c) = (h.connect(Chat), h.connect(Chat), h.connect(Chat));
    let elsewhere = h.connect_with(Chat, "/chat-b", "");
    for conn in [a, b, c, elsewhere] {
        h.received(conn);
    }
    h.send(
        b,
        r#"{"type":"chat","payload":{"text":"hi","n":1e3,"z":[ ]}}"#,
    );
    let expected = format!(
        r#"{{"type":"chat","payload":{{"text":"hi","n":1e3,"z":[ ]}},"timestamp":"{TS0}"}}"#
    );
    for conn in [a, b, c] {
        h.expect(conn, &[&expected]);
    }
    h.expect_nothing(elsewhere);
    h.send(a, r#"{"type":"chat"}"#);
    assert_eq!(
        h.received(c),
        vec![format!(
            r#"{{"type":"chat","payload":null,"timestamp":"{TS0}"}}"#
        )]
    );
}

#[test]
fn other_types_are_echoed() {
    let mut h = Harness::new();
    let a = h.connect(Chat);
    h.received(a);
    h.send(a, r#"{"type":"typing","payload":{"on":true},"other":1}"#);
    h.expect(
        a,
        &[&format!(
            r#"{{"type":"typing","payload":{{"on":true}},"timestamp":"{TS0}"}}"#
        )],
    );
    h.send(a, r#"{"type":"x"}"#);
    h.expect(
        a,
        &[&format!(
            r#"{{"type":"x","payload":null,"timestamp":"{TS0}"}}"#
        )],
    );
}

#[test]
fn malformed_messages_get_the_format_error() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(Chat), h.connect(Chat));
    h.received(a);
    h.received(b);
    let error = format!(
        r#"{{"type":"error","payload":{{"message":"Invalid message format"}},"timestamp":"{TS0}"}}"#
    );
    for text in ["not json", "[]", "\"chat\"", "{}", r#"{"type":1}"#] {
        h.send(a, text);
        h.expect(a, &[&error]);
    }
    h.expect_nothing(b);
    assert_eq!(h.engine.stats().of(Chat).errors_sent, 5);
}

#[test]
fn closed_connections_get_no_more_broadcasts() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(Chat), h.connect(Chat));
    h.close(b);
    h.received(a);
    h.received(b);
    h.send(a, r#"{"type":"chat","payload":1}"#);
    assert_eq!(h.received(a).len(), 1);
    h.expect_nothing(b);
    assert_eq!(h.engine.members("/chat", ""), Some(vec![a]));
}
