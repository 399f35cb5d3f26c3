//! `stream`: every table row, anti-spoofing, takeover, errors, isolation.

use crate::common::{Harness, TS0};
use roomd::engine::ConnId;
use roomd::protocol::Protocol::Stream;

fn join(h: &mut Harness, conn: ConnId, room: &str, user: &str, name: &str) {
    h.send(
        conn,
        &format!(
            r#"{{"type":"join-room","roomId":"{room}","userId":"{user}","userName":"{name}"}}"#
        ),
    );
}

/// `a` (user `ua`) and `b` (user `ub`) in room `r`, inboxes emptied.
fn room_of_two(h: &mut Harness) -> (ConnId, ConnId) {
    let (a, b) = (h.connect(Stream), h.connect(Stream));
    join(h, a, "r", "ua", "Ann");
    join(h, b, "r", "ub", "Bob");
    h.received(a);
    h.received(b);
    (a, b)
}

#[test]
fn join_lists_everyone_and_announces_to_the_others() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(Stream), h.connect(Stream));
    join(&mut h, a, "r", "ua", "Ann");
    h.expect(
        a,
        &[r#"{"type":"room-joined","roomId":"r","participants":[{"userId":"ua","userName":"Ann","isStreaming":false}]}"#],
    );
    join(&mut h, b, "r", "ub", "Bob");
    h.expect(
        b,
        &[r#"{"type":"room-joined","roomId":"r","participants":[{"userId":"ua","userName":"Ann","isStreaming":false},{"userId":"ub","userName":"Bob","isStreaming":false}]}"#],
    );
    h.expect(
        a,
        &[r#"{"type":"user-joined","roomId":"r","participant":{"userId":"ub","userName":"Bob","isStreaming":false}}"#],
    );
    assert_eq!(h.engine.members("/stream", "r"), Some(vec![a, b]));
}

#[test]
fn streaming_flags_go_to_all_and_show_in_later_joins() {
    let mut h = Harness::new();
    let (a, b) = room_of_two(&mut h);
    h.send(
        a,
        r#"{"type":"start-streaming","roomId":"r","userId":"ua"}"#,
    );
    let started = r#"{"type":"user-streaming-started","roomId":"r","userId":"ua"}"#;
    h.expect(a, &[started]);
    h.expect(b, &[started]);
    let c = h.connect(Stream);
    join(&mut h, c, "r", "uc", "Cy");
    let joined = h.received_json(c);
    assert_eq!(joined[0]["participants"][0]["isStreaming"], true);
    assert_eq!(joined[0]["participants"][1]["isStreaming"], false);
    h.received(a);
    h.received(b);
    h.send(a, r#"{"type":"stop-streaming","roomId":"r","userId":"ua"}"#);
    let stopped = r#"{"type":"user-streaming-stopped","roomId":"r","userId":"ua"}"#;
    for conn in [a, b, c] {
        h.expect(conn, &[stopped]);
    }
}

#[test]
fn chat_message_goes_to_all_with_name_and_time() {
    let mut h = Harness::new();
    let (a, b) = room_of_two(&mut h);
    let other_room = h.connect(Stream);
    join(&mut h, other_room, "r2", "uz", "Zed");
    h.received(other_room);
    h.send(b, r#"{"type":"chat-message","roomId":"r","userId":"ub","content":"hé \"you\"","userName":"Evil"}"#);
    let expected = format!(
        r#"{{"type":"chat-message","roomId":"r","userId":"ub","userName":"Bob","content":"hé \"you\"","timestamp":"{TS0}"}}"#
    );
    h.expect(a, &[&expected]);
    h.expect(b, &[&expected]);
    h.expect_nothing(other_room);
}

#[test]
fn leave_tells_the_others_and_deletes_an_empty_room() {
    let mut h = Harness::new();
    let (a, b) = room_of_two(&mut h);
    h.send(b, r#"{"type":"leave-room","roomId":"r"}"#);
    h.expect(a, &[r#"{"type":"user-left","roomId":"r","userId":"ub"}"#]);
    h.expect_nothing(b);
    h.send(b, r#"{"type":"leave-room","roomId":"r"}"#);
    h.expect(b, &[r#"{"type":"error","message":"Not in room r"}"#]);
    h.close(a);
    h.expect_nothing(b);
    assert_eq!(h.engine.room_count(), 0);
}

#[test]
fn disconnect_leaves_every_room() {
    let mut h = Harness::new();
    let (a, b) = room_of_two(&mut h);
    join(&mut h, b, "r2", "ub2", "Bob");
    join(&mut h, a, "r2", "ua2", "Ann");
    h.received(a);
    h.received(b);
    h.close(b);
    h.expect(
        a,
        &[
            r#"{"type":"user-left","roomId":"r","userId":"ub"}"#,
            r#"{"type":"user-left","roomId":"r2","userId":"ub2"}"#,
        ],
    );
    assert_eq!(h.engine.members("/stream", "r2"), Some(vec![a]));
}

#[test]
fn a_client_can_never_act_as_someone_else() {
    let mut h = Harness::new();
    let (a, b) = room_of_two(&mut h);
    let outsider = h.connect(Stream);
    for ty in ["start-streaming", "stop-streaming", "chat-message"] {
        h.send(
            a,
            &format!(r#"{{"type":"{ty}","roomId":"r","userId":"ub","content":"x"}}"#),
        );
        h.expect(
            a,
            &[r#"{"type":"error","message":"userId does not match this connection"}"#],
        );
        h.send(
            outsider,
            &format!(r#"{{"type":"{ty}","roomId":"r","userId":"ub","content":"x"}}"#),
        );
        h.expect(outsider, &[r#"{"type":"error","message":"Not in room r"}"#]);
    }
    h.send(outsider, r#"{"type":"leave-room","roomId":"r"}"#);
    h.expect(outsider, &[r#"{"type":"error","message":"Not in room r"}"#]);
    h.expect_nothing(b);
    assert_eq!(h.engine.members("/stream", "r"), Some(vec![a, b]));
}

#[test]
fn a_reconnecting_user_takes_over_its_participant() {
    let mut h = Harness::new();
    let (a, b) = room_of_two(&mut h);
    h.send(
        b,
        r#"{"type":"start-streaming","roomId":"r","userId":"ub"}"#,
    );
    h.received(a);
    h.received(b);
    let b2 = h.connect(Stream);
    join(&mut h, b2, "r", "ub", "Bobby");
    h.expect(
        b,
        &[r#"{"type":"error","message":"Replaced by a newer connection"}"#],
    );
    h.expect(
        b2,
        &[r#"{"type":"room-joined","roomId":"r","participants":[{"userId":"ua","userName":"Ann","isStreaming":false},{"userId":"ub","userName":"Bob","isStreaming":true}]}"#],
    );
    h.expect_nothing(a);
    assert_eq!(h.engine.members("/stream", "r"), Some(vec![a, b2]));
    // The old connection is detached: it can no longer act, and its close
    // changes nothing.
    h.send(
        b,
        r#"{"type":"chat-message","roomId":"r","userId":"ub","content":"x"}"#,
    );
    h.expect(b, &[r#"{"type":"error","message":"Not in room r"}"#]);
    h.close(b);
    h.expect_nothing(a);
    h.send(
        b2,
        r#"{"type":"stop-streaming","roomId":"r","userId":"ub"}"#,
    );
    h.expect(
        a,
        &[r#"{"type":"user-streaming-stopped","roomId":"r","userId":"ub"}"#],
    );
    h.close(b2);
    h.expect(a, &[r#"{"type":"user-left","roomId":"r","userId":"ub"}"#]);
}

#[test]
fn rejoining_the_same_room_first_leaves_it() {
    let mut h = Harness::new();
    let (a, b) = room_of_two(&mut h);
    join(&mut h, b, "r", "ub-new", "B");
    h.expect(
        a,
        &[
            r#"{"type":"user-left","roomId":"r","userId":"ub"}"#,
            r#"{"type":"user-joined","roomId":"r","participant":{"userId":"ub-new","userName":"B","isStreaming":false}}"#,
        ],
    );
    assert_eq!(h.received(b).len(), 1);
    assert_eq!(h.engine.members("/stream", "r"), Some(vec![a, b]));
}

#[test]
fn malformed_messages_get_errors() {
    let mut h = Harness::new();
    let a = h.connect(Stream);
    let long = "x".repeat(129);
    let cases = [
        ("nope".to_string(), "Invalid JSON"),
        ("[]".to_string(), "Message must be a JSON object"),
        (
            r#"{"roomId":"r"}"#.to_string(),
            "Missing or invalid message type",
        ),
        (r#"{"type":"fly"}"#.to_string(), "Unknown message type: fly"),
        (
            r#"{"type":"join-room","userId":"u","userName":"n"}"#.to_string(),
            "Missing or invalid field: roomId",
        ),
        (
            r#"{"type":"join-room","roomId":"r","userName":"n"}"#.to_string(),
            "Missing or invalid field: userId",
        ),
        (
            r#"{"type":"join-room","roomId":"r","userId":"u","userName":""}"#.to_string(),
            "Missing or invalid field: userName",
        ),
        (
            format!(r#"{{"type":"join-room","roomId":"{long}","userId":"u","userName":"n"}}"#),
            "Missing or invalid field: roomId",
        ),
        (
            r#"{"type":"chat-message","roomId":"r","userId":"u","content":5}"#.to_string(),
            "Missing or invalid field: content",
        ),
        (
            r#"{"type":"start-streaming","roomId":"r"}"#.to_string(),
            "Missing or invalid field: userId",
        ),
        (
            r#"{"type":"leave-room"}"#.to_string(),
            "Missing or invalid field: roomId",
        ),
    ];
    for (text, message) in &cases {
        h.send(a, text);
        h.expect(
            a,
            &[&format!(r#"{{"type":"error","message":"{message}"}}"#)],
        );
    }
    assert_eq!(h.engine.room_count(), 0);
}

#[test]
fn rooms_and_routes_are_isolated() {
    let mut h = Harness::new();
    let a = h.connect_with(Stream, "/stream", "");
    let b = h.connect_with(Stream, "/", "");
    let c = h.connect_with(Stream, "/stream", "");
    join(&mut h, a, "r", "u", "A");
    join(&mut h, b, "r", "u", "B");
    join(&mut h, c, "r2", "u", "C");
    h.received(a);
    h.received(c);
    // Same room and user on another route: no takeover, no announcement.
    assert_eq!(
        h.received(b),
        vec![
            r#"{"type":"room-joined","roomId":"r","participants":[{"userId":"u","userName":"B","isStreaming":false}]}"#
        ]
    );
    h.send(
        b,
        r#"{"type":"chat-message","roomId":"r","userId":"u","content":"x"}"#,
    );
    h.expect_nothing(a);
    h.expect_nothing(c);
    assert_eq!(h.engine.room_count(), 3);
}
