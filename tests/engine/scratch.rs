//! `scratch`: every table row, its errors, and isolation.

use crate::common::Harness;
use roomd::engine::Output;
use roomd::protocol::Protocol::Scratch;

/// Joins `session` and returns the user ID from the `joined` reply.
fn join(h: &mut Harness, conn: roomd::engine::ConnId, session: &str) -> String {
    h.send(
        conn,
        &format!(r#"{{"type":"join","sessionId":"{session}"}}"#),
    );
    let replies = h.received_json(conn);
    assert_eq!(replies[0]["type"], "joined", "{replies:?}");
    replies[0]["userId"].as_str().unwrap().to_string()
}

#[test]
fn join_replies_with_the_others_and_announces() {
    let mut h = Harness::new();
    let (a, b, c) = (h.connect(Scratch), h.connect(Scratch), h.connect(Scratch));
    h.send(a, r#"{"type":"join","sessionId":"s1"}"#);
    let reply = h.received(a);
    assert_eq!(reply.len(), 1);
    let ua: serde_json::Value = serde_json::from_str(&reply[0]).unwrap();
    let ua = ua["userId"].as_str().unwrap().to_string();
    assert!(ua.starts_with("u-") && ua.len() == 18, "{ua}");
    assert!(
        ua[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(
        reply[0],
        format!(r#"{{"type":"joined","sessionId":"s1","userId":"{ua}","users":[]}}"#)
    );

    let ub = join(&mut h, b, "s1");
    assert_ne!(ua, ub);
    h.expect(
        a,
        &[&format!(
            r#"{{"type":"user-joined","sessionId":"s1","userId":"{ub}"}}"#
        )],
    );
    // The `users` list holds the others in joining order.
    h.send(c, r#"{"type":"join","sessionId":"s1"}"#);
    let joined = h.received_json(c);
    assert_eq!(joined[0]["users"], serde_json::json!([ua, ub]));
    let uc = joined[0]["userId"].as_str().unwrap();
    let notice = format!(r#"{{"type":"user-joined","sessionId":"s1","userId":"{uc}"}}"#);
    h.expect(a, &[&notice]);
    h.expect(b, &[&notice]);
    assert_eq!(h.engine.members("/scratch", "s1"), Some(vec![a, b, c]));
}

#[test]
fn sync_goes_verbatim_to_the_others_only() {
    let mut h = Harness::new();
    let (a, b, c, d) = (
        h.connect(Scratch),
        h.connect(Scratch),
        h.connect(Scratch),
        h.connect(Scratch),
    );
    let ua = join(&mut h, a, "s");
    join(&mut h, b, "s");
    join(&mut h, c, "s");
    join(&mut h, d, "other");
    for conn in [a, b, c, d] {
        h.received(conn);
    }
    h.send(
        a,
        r#"{"type":"sync","sessionId":"s","changes":{"z":1.50, "a":[true,null,"\u00e9"]}}"#,
    );
    let expected = format!(
        r#"{{"type":"sync","sessionId":"s","userId":"{ua}","changes":{{"z":1.50, "a":[true,null,"\u00e9"]}}}}"#
    );
    h.expect(b, &[&expected]);
    h.expect(c, &[&expected]);
    h.expect_nothing(a);
    h.expect_nothing(d);
}

#[test]
fn sync_outside_the_session_is_refused() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(Scratch), h.connect(Scratch));
    join(&mut h, a, "s");
    join(&mut h, b, "t");
    h.received(a);
    h.send(b, r#"{"type":"sync","sessionId":"s","changes":1}"#);
    h.expect(b, &[r#"{"type":"error","message":"Not in session s"}"#]);
    h.expect_nothing(a);
}

#[test]
fn leave_replies_and_announces_and_removes_the_session() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(Scratch), h.connect(Scratch));
    join(&mut h, a, "s");
    let ub = join(&mut h, b, "s");
    h.received(a);
    h.send(b, r#"{"type":"leave"}"#);
    h.expect(b, &[r#"{"type":"left","sessionId":"s"}"#]);
    h.expect(
        a,
        &[&format!(
            r#"{{"type":"user-left","sessionId":"s","userId":"{ub}"}}"#
        )],
    );
    h.send(b, r#"{"type":"leave"}"#);
    h.expect(b, &[r#"{"type":"error","message":"Not in a session"}"#]);
    h.send(a, r#"{"type":"leave"}"#);
    h.received(a);
    assert_eq!(h.engine.room_count(), 0);
    assert_eq!(h.engine.members("/scratch", "s"), None);
}

#[test]
fn joining_another_session_leaves_the_current_one() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(Scratch), h.connect(Scratch));
    join(&mut h, a, "s");
    h.send(b, r#"{"type":"join","sessionId":"s"}"#);
    let ub = h.received_json(b)[0]["userId"]
        .as_str()
        .unwrap()
        .to_string();
    h.received(a);
    h.send(b, r#"{"type":"join","sessionId":"t"}"#);
    h.expect(
        b,
        &[
            r#"{"type":"left","sessionId":"s"}"#,
            &format!(r#"{{"type":"joined","sessionId":"t","userId":"{ub}","users":[]}}"#),
        ],
    );
    h.expect(
        a,
        &[&format!(
            r#"{{"type":"user-left","sessionId":"s","userId":"{ub}"}}"#
        )],
    );
    assert_eq!(h.engine.members("/scratch", "s"), Some(vec![a]));
    assert_eq!(h.engine.members("/scratch", "t"), Some(vec![b]));
}

#[test]
fn disconnect_is_leaving() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(Scratch), h.connect(Scratch));
    join(&mut h, a, "s");
    let ub = join(&mut h, b, "s");
    h.received(a);
    h.close(b);
    h.expect(
        a,
        &[&format!(
            r#"{{"type":"user-left","sessionId":"s","userId":"{ub}"}}"#
        )],
    );
    h.expect_nothing(b);
    h.close(a);
    assert_eq!(h.engine.room_count(), 0);
    assert_eq!(h.engine.connection_count(), 0);
    // A second close of the same connection changes nothing.
    h.close(a);
    h.expect_nothing(a);
}

#[test]
fn malformed_messages_get_errors() {
    let mut h = Harness::new();
    let a = h.connect(Scratch);
    let cases = [
        ("hello", "Invalid JSON"),
        ("[1]", "Message must be a JSON object"),
        (r#"{"sessionId":"s"}"#, "Missing or invalid message type"),
        (r#"{"type":7}"#, "Missing or invalid message type"),
        (r#"{"type":"dance"}"#, "Unknown message type: dance"),
        (r#"{"type":"join"}"#, "Missing or invalid field: sessionId"),
        (
            r#"{"type":"join","sessionId":5}"#,
            "Missing or invalid field: sessionId",
        ),
        (
            r#"{"type":"join","sessionId":""}"#,
            "Missing or invalid field: sessionId",
        ),
        (
            r#"{"type":"sync","sessionId":"s"}"#,
            "Missing or invalid field: changes",
        ),
    ];
    for (text, message) in cases {
        h.send(a, text);
        h.expect(
            a,
            &[&format!(r#"{{"type":"error","message":"{message}"}}"#)],
        );
    }
    let long = "x".repeat(129);
    h.send(a, &format!(r#"{{"type":"join","sessionId":"{long}"}}"#));
    h.expect(
        a,
        &[r#"{"type":"error","message":"Missing or invalid field: sessionId"}"#],
    );
    let max = "é".repeat(128);
    h.send(a, &format!(r#"{{"type":"join","sessionId":"{max}"}}"#));
    assert_eq!(h.received_json(a)[0]["type"], "joined");
    assert_eq!(h.engine.stats().of(Scratch).errors_sent, 10);
}

#[test]
fn routes_with_the_same_protocol_share_nothing() {
    let mut h = Harness::new();
    let a = h.connect_with(Scratch, "/scratch", "");
    let b = h.connect_with(Scratch, "/scratch2", "");
    join(&mut h, a, "s");
    h.send(b, r#"{"type":"join","sessionId":"s"}"#);
    assert_eq!(h.received_json(b)[0]["users"], serde_json::json!([]));
    h.expect_nothing(a);
    h.send(b, r#"{"type":"sync","sessionId":"s","changes":{}}"#);
    h.expect_nothing(a);
    assert_eq!(h.engine.members("/scratch", "s"), Some(vec![a]));
    assert_eq!(h.engine.members("/scratch2", "s"), Some(vec![b]));
    assert_eq!(h.engine.room_count(), 2);
    assert!(h.take(b).iter().all(|o| matches!(o, Output::Send { .. })));
}
