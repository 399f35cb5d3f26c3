//! `presence`: greeting, online/offline announcements, PING, errors,
//! the number-vs-string `userId` rule and isolation between routes.

use crate::common::{Harness, T0, TS0};
use roomd::engine::{ConnId, Output, RouteStats};
use roomd::protocol::Protocol;
use roomd::protocol::Protocol::Presence;
use roomd::protocol::close::CloseReason;
use roomd::protocol::presence::UserIdError;

fn online(h: &mut Harness, user: &str) -> ConnId {
    h.connect_with(Presence, "/presence", &format!("userId={user}"))
}

#[test]
fn open_greets_then_lists_online_users() {
    let mut h = Harness::new();
    let a = online(&mut h, "42");
    h.expect(
        a,
        &[
            &format!(r#"{{"type":"CONNECTION_ESTABLISHED","userId":42,"timestamp":"{TS0}","connectionId":"42-{T0}"}}"#),
            &format!(r#"{{"type":"ONLINE_USERS","userIds":[42],"timestamp":"{TS0}"}}"#),
        ],
    );
    h.now += 5;
    let b = online(&mut h, "alice");
    let ts = "2024-01-01T12:00:00.005Z";
    h.expect(
        b,
        &[
            &format!(r#"{{"type":"CONNECTION_ESTABLISHED","userId":"alice","timestamp":"{ts}","connectionId":"alice-{}"}}"#, T0 + 5),
            &format!(r#"{{"type":"ONLINE_USERS","userIds":[42,"alice"],"timestamp":"{ts}"}}"#),
        ],
    );
    h.expect(
        a,
        &[&format!(
            r#"{{"type":"USER_ONLINE","userId":"alice","timestamp":"{ts}"}}"#
        )],
    );
    assert_eq!(h.engine.online_users("/presence"), vec!["42", "alice"]);
}

#[test]
fn a_second_connection_announces_nothing_and_gets_a_distinct_id() {
    let mut h = Harness::new();
    let other = online(&mut h, "bob");
    let a1 = online(&mut h, "7");
    h.received(other);
    let a2 = online(&mut h, "7");
    let a3 = online(&mut h, "7");
    let ids: Vec<String> = [a1, a2, a3]
        .iter()
        .map(|&c| {
            h.received_json(c)[0]["connectionId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        ids,
        vec![format!("7-{T0}"), format!("7-{T0}-2"), format!("7-{T0}-3")]
    );
    h.expect_nothing(other);
    assert_eq!(h.engine.members("/presence", "7"), Some(vec![a1, a2, a3]));
    // Only the last connection's close announces the user offline.
    h.close(a2);
    h.close(a1);
    h.expect_nothing(other);
    h.now += 1000;
    h.close(a3);
    h.expect(
        other,
        &[r#"{"type":"USER_OFFLINE","userId":7,"timestamp":"2024-01-01T12:00:01.000Z"}"#],
    );
    assert_eq!(h.engine.online_users("/presence"), vec!["bob"]);
    // A freed connection ID may be reused.
    let again = online(&mut h, "7");
    assert_eq!(
        h.received_json(again)[0]["connectionId"],
        format!("7-{}", T0 + 1000)
    );
}

#[test]
fn online_and_offline_go_to_every_connection_of_other_users() {
    let mut h = Harness::new();
    let (x1, x2) = (online(&mut h, "x"), online(&mut h, "x"));
    h.received(x1);
    h.received(x2);
    let y = online(&mut h, "y");
    let notice = format!(r#"{{"type":"USER_ONLINE","userId":"y","timestamp":"{TS0}"}}"#);
    h.expect(x1, &[&notice]);
    h.expect(x2, &[&notice]);
    h.received(y);
    h.close(y);
    let notice = format!(r#"{{"type":"USER_OFFLINE","userId":"y","timestamp":"{TS0}"}}"#);
    h.expect(x1, &[&notice]);
    h.expect(x2, &[&notice]);
}

#[test]
fn ping_and_errors() {
    let mut h = Harness::new();
    let a = online(&mut h, "a");
    h.received(a);
    h.send(a, r#"{"type":"PING"}"#);
    h.expect(a, &[&format!(r#"{{"type":"PONG","timestamp":"{TS0}"}}"#)]);
    let cases = [
        ("{", "Invalid JSON"),
        ("5", "Message must be a JSON object"),
        ("{}", "Missing or invalid message type"),
        (r#"{"type":"ping"}"#, "Unknown message type: ping"),
        (
            r#"{"type":"USER_ONLINE","userId":"z"}"#,
            "Unknown message type: USER_ONLINE",
        ),
    ];
    for (text, message) in cases {
        h.send(a, text);
        h.expect(
            a,
            &[&format!(r#"{{"type":"ERROR","message":"{message}"}}"#)],
        );
    }
}

#[test]
fn user_id_rule_and_query_decoding() {
    let mut h = Harness::new();
    let cases = [
        ("userId=000123", "123"),
        ("userId=123456789012345", "123456789012345"),
        ("userId=1234567890123456", r#""1234567890123456""#),
        ("userId=12a", r#""12a""#),
        ("x=1&userId=J%C3%BCrgen+K", r#""Jürgen K""#),
        ("userId=%22q%22", r#""\"q\"""#),
    ];
    for (query, json) in cases {
        let c = h.connect_with(Presence, "/p", query);
        let first = h.received(c).remove(0);
        assert!(
            first.contains(&format!(r#""userId":{json},"#)),
            "{query}: {first}"
        );
        h.close(c);
    }
}

#[test]
fn a_missing_user_id_is_refused() {
    let mut h = Harness::new();
    for (query, why) in [
        ("", UserIdError::Missing),
        ("userId=", UserIdError::Empty),
        ("user=1", UserIdError::Missing),
        (&format!("userId={}", "u".repeat(129)), UserIdError::TooLong),
    ] {
        let c = h.connect_with(Presence, "/presence", query);
        let reason = CloseReason::InvalidUserId(why);
        assert_eq!(
            h.take(c),
            vec![Output::Close { conn: c, reason }],
            "{query}"
        );
        assert_eq!(reason.code(), 1008);
    }
    assert_eq!(h.engine.connection_count(), 0);
    assert_eq!(h.engine.stats().of(Presence).connections, 0);
}

#[test]
fn each_route_has_its_own_users() {
    let mut h = Harness::new();
    let a = h.connect_with(Presence, "/presence", "userId=a");
    let b = h.connect_with(Presence, "/ws-online-status", "userId=b");
    h.received(a);
    h.expect(
        b,
        &[
            &format!(r#"{{"type":"CONNECTION_ESTABLISHED","userId":"b","timestamp":"{TS0}","connectionId":"b-{T0}"}}"#),
            &format!(r#"{{"type":"ONLINE_USERS","userIds":["b"],"timestamp":"{TS0}"}}"#),
        ],
    );
    h.expect_nothing(a);
    h.close(b);
    h.expect_nothing(a);
    assert_eq!(h.engine.online_users("/presence"), vec!["a"]);
    assert_eq!(
        h.engine.online_users("/ws-online-status"),
        Vec::<String>::new()
    );
    assert_eq!(h.engine.stats().of(Presence).users, 1);
}

#[test]
fn every_route_reports_its_connections_and_presence_routes_their_users() {
    let mut h = Harness::new();
    let a = h.connect_with(Presence, "/presence", "userId=1");
    h.connect_with(Presence, "/presence", "userId=1");
    h.connect_with(Presence, "/presence", "userId=2");
    h.connect_with(Presence, "/ws-online-status", "userId=3");
    h.connect(Protocol::Chat);
    let route = |path: &str, protocol, connections, users| RouteStats {
        path: path.into(),
        protocol,
        connections,
        users,
    };
    let stats = h.engine.stats();
    assert_eq!(
        stats.routes,
        vec![
            route("/presence", Presence, 3, 2),
            route("/ws-online-status", Presence, 1, 1),
            route("/chat", Protocol::Chat, 1, 0),
        ]
    );
    assert_eq!(stats.of(Presence).users, 3, "the sum over presence routes");
    h.close(a);
    assert_eq!(
        h.engine.stats().routes[0],
        route("/presence", Presence, 2, 2)
    );
}
