//! Cross-protocol engine behaviour: binary frames, heartbeats, rate
//! limiting, unknown connections and counters.

use crate::common::{Harness, TS0};
use roomd::engine::{ConnId, EngineConfig, Input, Output};
use roomd::protocol::Protocol;
use roomd::protocol::close::CloseReason;

#[test]
fn binary_closes_with_1003_and_counts_as_leaving() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(Protocol::Stream), h.connect(Protocol::Stream));
    h.send(
        a,
        r#"{"type":"join-room","roomId":"r","userId":"a","userName":"A"}"#,
    );
    h.send(
        b,
        r#"{"type":"join-room","roomId":"r","userId":"b","userName":"B"}"#,
    );
    h.received(a);
    h.received(b);
    h.input(Input::Binary { conn: b, len: 10 });
    let reason = CloseReason::Binary;
    assert_eq!(h.take(b), vec![Output::Close { conn: b, reason }]);
    assert_eq!(reason.code(), 1003);
    h.expect(a, &[r#"{"type":"user-left","roomId":"r","userId":"b"}"#]);
    // The reactor's later Closed is a no-op.
    h.close(b);
    h.expect_nothing(a);
    assert_eq!(h.engine.connection_count(), 1);
    for p in Protocol::ALL {
        let c = h.connect_with(p, &format!("/{p}"), "userId=u");
        h.take(c);
        h.input(Input::Binary { conn: c, len: 1 });
        let reason = CloseReason::Binary;
        assert_eq!(h.take(c), vec![Output::Close { conn: c, reason }], "{p}");
    }
}

#[test]
fn heartbeats_ping_and_terminate_the_silent() {
    let config = EngineConfig {
        heartbeat_interval_ms: 1000,
        ..EngineConfig::default()
    };
    let mut h = Harness::with_config(config);
    let (quiet, ponger, talker) = (
        h.connect(Protocol::Scratch),
        h.connect(Protocol::Scratch),
        h.connect(Protocol::Scratch),
    );
    h.send(quiet, r#"{"type":"join","sessionId":"s"}"#);
    h.send(ponger, r#"{"type":"join","sessionId":"s"}"#);
    h.received(quiet);
    h.received(ponger);
    h.advance(999);
    for c in [quiet, ponger, talker] {
        h.expect_nothing(c);
    }
    h.advance(1);
    for c in [quiet, ponger, talker] {
        assert_eq!(h.take(c), vec![Output::Ping { conn: c }]);
    }
    h.input(Input::Pong { conn: ponger });
    h.advance(500);
    h.send(talker, "not json");
    h.received(talker);
    h.advance(500);
    assert_eq!(h.take(quiet), vec![Output::Terminate { conn: quiet }]);
    let got = h.take(ponger);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(matches!(&got[0], Output::Send { text, .. } if text.contains("user-left")));
    assert_eq!(got[1], Output::Ping { conn: ponger });
    assert_eq!(h.take(talker), vec![Output::Ping { conn: talker }]);
    assert_eq!(h.engine.connection_count(), 2);
    h.close(quiet);
    // Nothing heard since the second ping: both go at the third.
    h.advance(1000);
    assert_eq!(h.take(ponger), vec![Output::Terminate { conn: ponger }]);
    assert_eq!(h.take(talker), vec![Output::Terminate { conn: talker }]);
    assert_eq!(h.engine.connection_count(), 0);
    assert_eq!(h.engine.room_count(), 0);
    h.advance(5000);
    h.expect_nothing(ponger);
}

#[test]
fn timeouts_only_visit_due_connections_and_late_timeouts_ping_once() {
    let config = EngineConfig {
        heartbeat_interval_ms: 1000,
        ..EngineConfig::default()
    };
    let mut h = Harness::with_config(config);
    let a = h.connect(Protocol::Chat);
    h.received(a);
    h.now += 400;
    let b = h.connect(Protocol::Chat);
    h.received(b);
    h.advance(600);
    assert_eq!(h.take(a), vec![Output::Ping { conn: a }]);
    h.expect_nothing(b);
    h.input(Input::Pong { conn: a });
    h.advance(5000);
    assert_eq!(h.take(a), vec![Output::Ping { conn: a }]);
    assert_eq!(h.take(b), vec![Output::Ping { conn: b }]);
}

#[test]
fn rate_limited_messages_get_each_protocols_error() {
    let config = EngineConfig {
        rate_limit_per_sec: 1,
        rate_limit_burst: 2,
        ..EngineConfig::default()
    };
    let expected = [
        (
            Protocol::Scratch,
            r#"{"type":"error","message":"rate limit exceeded"}"#.to_string(),
        ),
        (
            Protocol::Signal,
            r#"{"type":"error","message":"rate limit exceeded"}"#.to_string(),
        ),
        (
            Protocol::Presence,
            r#"{"type":"ERROR","message":"rate limit exceeded"}"#.to_string(),
        ),
        (
            Protocol::Chat,
            format!(
                r#"{{"type":"error","payload":{{"message":"rate limit exceeded"}},"timestamp":"{TS0}"}}"#
            ),
        ),
        (
            Protocol::Stream,
            r#"{"type":"error","message":"rate limit exceeded"}"#.to_string(),
        ),
    ];
    for (p, error) in expected {
        let mut h = Harness::with_config(config.clone());
        let c = h.connect_with(p, "/x", "userId=1");
        h.take(c);
        h.send(c, "{}");
        h.send(c, "{}");
        assert_eq!(h.received(c).len(), 2);
        h.send(c, "{}");
        h.expect(c, &[&error]);
        assert_eq!(h.engine.stats().of(p).rate_limited, 1);
        h.now += 1000;
        h.send(c, "{}");
        assert_ne!(h.received(c), vec![error.clone()], "{p}: refilled");
    }
}

#[test]
fn a_sustained_flood_is_closed_with_1008() {
    let config = EngineConfig {
        rate_limit_per_sec: 10,
        rate_limit_burst: 10,
        rate_limit_close_after_ms: 2000,
        ..EngineConfig::default()
    };
    let mut h = Harness::with_config(config);
    let (a, b) = (h.connect(Protocol::Chat), h.connect(Protocol::Chat));
    h.received(b);
    let mut closed_at = None;
    for i in 0..10_000u64 {
        h.now += 1;
        h.send(a, r#"{"type":"ping"}"#);
        if h.take(a).iter().any(|o| {
            *o == Output::Close {
                conn: a,
                reason: CloseReason::RateLimited,
            }
        }) {
            closed_at = Some(i);
            break;
        }
    }
    // Burst of 10, then refused from ~10 ms on; closed 2 s later.
    let closed_at = closed_at.expect("never closed");
    assert!((2000..2200).contains(&closed_at), "{closed_at}");
    assert_eq!(h.engine.connection_count(), 1);
    h.expect_nothing(b);
    assert!(h.engine.stats().of(Protocol::Chat).rate_limited > 1000);
}

#[test]
fn inputs_for_unknown_connections_are_ignored() {
    let mut h = Harness::new();
    let ghost = ConnId(999);
    h.send(ghost, r#"{"type":"ping"}"#);
    h.input(Input::Binary {
        conn: ghost,
        len: 3,
    });
    h.input(Input::Pong { conn: ghost });
    h.close(ghost);
    h.expect_nothing(ghost);
    assert_eq!(h.engine.stats(), Default::default());
    // A second Open of a live id is ignored too.
    let a = h.connect(Protocol::Chat);
    h.received(a);
    h.input(Input::Open {
        conn: a,
        protocol: Protocol::Chat,
        path: "/chat".into(),
        query: String::new(),
        peer: None,
        identity: None,
    });
    h.expect_nothing(a);
    assert_eq!(h.engine.stats().of(Protocol::Chat).connections, 1);
}

#[test]
fn a_path_keeps_its_first_protocol() {
    let mut h = Harness::new();
    let a = h.connect_with(Protocol::Chat, "/x", "");
    h.received(a);
    let b = h.connect_with(Protocol::Stream, "/x", "");
    assert!(matches!(
        h.take(b).as_slice(),
        [Output::Close {
            reason: CloseReason::RouteMismatch,
            ..
        }]
    ));
    assert_eq!(h.engine.connection_count(), 1);
}

#[test]
fn counters_follow_traffic() {
    let mut h = Harness::new();
    let (a, b, c) = (
        h.connect(Protocol::Chat),
        h.connect(Protocol::Chat),
        h.connect(Protocol::Chat),
    );
    let text = r#"{"type":"chat","payload":"x"}"#;
    h.send(a, text);
    h.send(a, "bad");
    let s = *h.engine.stats().of(Protocol::Chat);
    let welcome_len = h.received(a)[0].len() as u64;
    let chat_len = h.received(b)[1].len() as u64;
    h.received(c);
    let error_len = format!(
        r#"{{"type":"error","payload":{{"message":"Invalid message format"}},"timestamp":"{TS0}"}}"#
    )
    .len() as u64;
    assert_eq!(s.connections, 3);
    assert_eq!(s.rooms, 0);
    assert_eq!(s.messages_in, 2);
    assert_eq!(s.bytes_in, (text.len() + 3) as u64);
    assert_eq!(s.messages_out, 3 + 3 + 1);
    assert_eq!(s.bytes_out, 3 * welcome_len + 3 * chat_len + error_len);
    assert_eq!(s.errors_sent, 1);
    let mut h2 = Harness::new();
    let s1 = h2.connect(Protocol::Stream);
    h2.send(
        s1,
        r#"{"type":"join-room","roomId":"r","userId":"a","userName":"A"}"#,
    );
    assert_eq!(h2.engine.stats().of(Protocol::Stream).rooms, 1);
    h2.close(s1);
    assert_eq!(h2.engine.stats().of(Protocol::Stream).rooms, 0);
    assert_eq!(h2.engine.stats().of(Protocol::Stream).connections, 0);
}

#[test]
fn a_broadcast_shares_one_allocation() {
    let mut h = Harness::new();
    let conns: Vec<ConnId> = (0..5).map(|_| h.connect(Protocol::Chat)).collect();
    h.engine.drain_outputs().for_each(drop);
    h.engine.handle(
        h.now,
        Input::Text {
            conn: conns[0],
            text: r#"{"type":"chat","payload":1}"#.into(),
        },
    );
    let texts: Vec<_> = h
        .engine
        .drain_outputs()
        .map(|o| match o {
            Output::Send { text, .. } => text,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(texts.len(), 5);
    assert!(texts.iter().all(|t| std::sync::Arc::ptr_eq(t, &texts[0])));
}

#[test]
fn take_outputs_appends_in_order_like_drain() {
    let feed = |h: &mut Harness, conn: ConnId| {
        let text = r#"{"type":"chat","payload":2}"#.into();
        h.engine.handle(h.now, Input::Text { conn, text });
    };
    let mut a = Harness::new();
    let mut b = Harness::new();
    for h in [&mut a, &mut b] {
        let conns: Vec<ConnId> = (0..3).map(|_| h.connect(Protocol::Chat)).collect();
        h.engine.drain_outputs().for_each(drop);
        feed(h, conns[1]);
    }
    let drained: Vec<Output> = a.engine.drain_outputs().collect();
    let mut taken = Vec::new();
    b.engine.take_outputs(&mut taken);
    assert_eq!(taken.len(), 3);
    assert_eq!(taken, drained, "an empty buffer gets the same outputs");
    feed(&mut b, ConnId(2));
    b.engine.take_outputs(&mut taken);
    assert_eq!(taken.len(), 6, "a non-empty buffer is appended to");
    assert_eq!(taken[3..], drained[..]);
    b.engine.take_outputs(&mut taken);
    assert_eq!(taken.len(), 6, "nothing queued: nothing added");
}

#[test]
fn extreme_and_backward_times_do_not_panic() {
    let mut h = Harness::new();
    for now in [0, u64::MAX - 5, u64::MAX, 3] {
        h.now = now;
        for p in Protocol::ALL {
            let c = h.connect_with(p, &format!("/{p}"), "userId=7");
            h.send(c, r#"{"type":"ping"}"#);
            h.send(
                c,
                r#"{"type":"join-room","roomId":"r","userId":"u","userName":"n"}"#,
            );
            h.send(
                c,
                r#"{"type":"chat-message","roomId":"r","userId":"u","content":"c"}"#,
            );
            h.input(Input::Timeout);
            h.close(c);
        }
    }
    let all: Vec<Output> = (1..=20).flat_map(|i| h.take(ConnId(i))).collect();
    assert!(all.iter().any(
        |o| matches!(o, Output::Send { text, .. } if text.contains("9999-12-31T23:59:59.999Z"))
    ));
    assert_eq!(h.engine.connection_count(), 0);
}
