//! `signal`: every table row, its errors, peer-left and isolation.

use crate::common::Harness;
use roomd::engine::{ConnId, EngineConfig};
use roomd::protocol::Protocol::Signal;

/// `conn` creates a room; returns its ID.
fn create(h: &mut Harness, conn: ConnId) -> String {
    h.send(conn, r#"{"type":"create-room"}"#);
    let reply = h.received_json(conn);
    assert_eq!(reply.len(), 1);
    assert_eq!(reply[0]["type"], "room-created");
    reply[0]["roomId"].as_str().unwrap().to_string()
}

/// A room with a host and a guest, their inboxes emptied.
fn pair(h: &mut Harness) -> (ConnId, ConnId, String) {
    let (host, guest) = (h.connect(Signal), h.connect(Signal));
    let room = create(h, host);
    h.send(
        guest,
        &format!(r#"{{"type":"join-room","roomId":"{room}"}}"#),
    );
    let joined = format!(r#"{{"type":"peer-joined","roomId":"{room}"}}"#);
    h.expect(host, &[&joined]);
    h.expect(guest, &[&joined]);
    (host, guest, room)
}

#[test]
fn create_gives_a_fresh_six_digit_id() {
    let mut h = Harness::new();
    let a = h.connect(Signal);
    let mut ids = std::collections::HashSet::new();
    for _ in 0..20 {
        let id = create(&mut h, a);
        assert_eq!(id.len(), 6);
        assert!((100_000..=999_999).contains(&id.parse::<u32>().unwrap()));
        assert!(ids.insert(id.clone()), "duplicate {id}");
        assert_eq!(h.engine.members("/signal", &id), Some(vec![a]));
    }
    assert_eq!(h.engine.room_count(), 20);
}

#[test]
fn join_tells_both_peers_and_relays_verbatim() {
    let mut h = Harness::new();
    let (host, guest, room) = pair(&mut h);
    assert_eq!(h.engine.members("/signal", &room), Some(vec![host, guest]));
    let offer = format!(
        r#"{{ "type":"signal", "roomId":"{room}","sdp":{{"b":1.0,"a":"x\u00e9"}},"extra":[1] }}"#
    );
    h.send(host, &offer);
    h.expect(guest, &[&offer]);
    h.expect_nothing(host);
    let chat =
        format!(r#"{{"type":"chat-message","roomId":"{room}","message":"hi","timestamp":"T"}}"#);
    h.send(guest, &chat);
    h.expect(host, &[&chat]);
    h.expect_nothing(guest);
}

#[test]
fn join_errors() {
    let mut h = Harness::new();
    let (host, _guest, room) = pair(&mut h);
    let third = h.connect(Signal);
    let full = r#"{"type":"error","message":"Room not found or full"}"#;
    h.send(
        third,
        &format!(r#"{{"type":"join-room","roomId":"{room}"}}"#),
    );
    h.expect(third, &[full]);
    h.send(third, r#"{"type":"join-room","roomId":"000000"}"#);
    h.expect(third, &[full]);
    let own = create(&mut h, third);
    h.send(
        third,
        &format!(r#"{{"type":"join-room","roomId":"{own}"}}"#),
    );
    h.expect(third, &[full]);
    h.send(third, r#"{"type":"join-room"}"#);
    h.expect(
        third,
        &[r#"{"type":"error","message":"Missing or invalid field: roomId"}"#],
    );
    h.expect_nothing(host);
}

#[test]
fn relay_errors_and_non_members_never_reach_peers() {
    let mut h = Harness::new();
    let (host, guest, room) = pair(&mut h);
    let outsider = h.connect(Signal);
    for ty in ["signal", "chat-message"] {
        h.send(
            outsider,
            &format!(r#"{{"type":"{ty}","roomId":"{room}","x":1}}"#),
        );
        h.expect(
            outsider,
            &[r#"{"type":"error","message":"Not a member of this room"}"#],
        );
        h.send(outsider, &format!(r#"{{"type":"{ty}","roomId":"nope"}}"#));
        h.expect(
            outsider,
            &[r#"{"type":"error","message":"Room not found"}"#],
        );
    }
    let alone = create(&mut h, outsider);
    h.send(
        outsider,
        &format!(r#"{{"type":"signal","roomId":"{alone}"}}"#),
    );
    h.expect(
        outsider,
        &[r#"{"type":"error","message":"Peer not connected"}"#],
    );
    h.expect_nothing(host);
    h.expect_nothing(guest);
}

#[test]
fn disconnect_deletes_the_room_and_tells_the_peer() {
    let mut h = Harness::new();
    let (host, guest, room) = pair(&mut h);
    h.close(guest);
    h.expect(
        host,
        &[&format!(r#"{{"type":"peer-left","roomId":"{room}"}}"#)],
    );
    assert_eq!(h.engine.room_count(), 0);
    h.send(host, &format!(r#"{{"type":"signal","roomId":"{room}"}}"#));
    h.expect(host, &[r#"{"type":"error","message":"Room not found"}"#]);

    let (host2, guest2, room2) = pair(&mut h);
    h.close(host2);
    h.expect(
        guest2,
        &[&format!(r#"{{"type":"peer-left","roomId":"{room2}"}}"#)],
    );
    assert_eq!(h.engine.room_count(), 0);
    // A lone host leaving tells nobody.
    let lone = h.connect(Signal);
    create(&mut h, lone);
    h.close(lone);
    assert_eq!(h.engine.room_count(), 0);
    h.expect_nothing(host);
    h.expect_nothing(guest2);
}

#[test]
fn a_connection_may_be_in_several_rooms_up_to_the_limit() {
    let mut h = Harness::with_config(EngineConfig {
        max_rooms_per_conn: 2,
        ..EngineConfig::default()
    });
    let (a, b) = (h.connect(Signal), h.connect(Signal));
    let r1 = create(&mut h, a);
    let r2 = create(&mut h, b);
    h.send(a, &format!(r#"{{"type":"join-room","roomId":"{r2}"}}"#));
    assert_eq!(h.received(a).len(), 1);
    h.received(b);
    h.send(a, r#"{"type":"create-room"}"#);
    h.expect(a, &[r#"{"type":"error","message":"Room limit reached"}"#]);
    let c = h.connect(Signal);
    let r3 = create(&mut h, c);
    h.send(a, &format!(r#"{{"type":"join-room","roomId":"{r3}"}}"#));
    h.expect(a, &[r#"{"type":"error","message":"Room limit reached"}"#]);
    // Closing `a` ends both its rooms; only `b` had a peer there.
    h.close(a);
    h.expect(b, &[&format!(r#"{{"type":"peer-left","roomId":"{r2}"}}"#)]);
    assert_eq!(h.engine.members("/signal", &r1), None);
    assert_eq!(h.engine.members("/signal", &r3), Some(vec![c]));
}

#[test]
fn room_ids_follow_the_seed() {
    let ids = |seed| {
        let mut e = roomd::engine::Engine::new(EngineConfig::default(), seed);
        e.handle(
            0,
            roomd::engine::Input::Open {
                conn: ConnId(1),
                protocol: Signal,
                path: "/signal".into(),
                query: String::new(),
                peer: None,
                identity: None,
            },
        );
        for _ in 0..5 {
            e.handle(
                0,
                roomd::engine::Input::Text {
                    conn: ConnId(1),
                    text: r#"{"type":"create-room"}"#.into(),
                },
            );
        }
        e.drain_outputs().collect::<Vec<_>>()
    };
    assert_eq!(ids(1), ids(1));
    assert_ne!(ids(1), ids(2));
}

#[test]
fn routes_are_separate_namespaces() {
    let mut h = Harness::new();
    let a = h.connect_with(Signal, "/signal", "");
    let b = h.connect_with(Signal, "/signal-b", "");
    let room = create(&mut h, a);
    h.send(b, &format!(r#"{{"type":"join-room","roomId":"{room}"}}"#));
    h.expect(
        b,
        &[r#"{"type":"error","message":"Room not found or full"}"#],
    );
    h.expect_nothing(a);
}
