//! Signed identities in the engine: each protocol's identity rule, the
//! `rooms` claim, chat's `auth` replies, expiry and refresh, auth off, and
//! journals with identities.

use crate::common::{Harness, T0, TS0};
use roomd::engine::{AuthPolicy, ConnId, Engine, EngineConfig, Input, Output};
use roomd::journal::{JournalReader, JournalWriter};
use roomd::protocol::Protocol::{self, Chat, Presence, Scratch, Signal, Stream};
use roomd::protocol::close::CloseReason;
use roomd::protocol::token::{Identity, Refusal};

const GRACE_MS: u64 = 30_000;
/// `exp` of the tokens below: a minute after [`T0`], in seconds.
const EXP: u64 = T0 / 1000 + 60;
/// When a connection with a token expiring at [`EXP`] is closed.
const CLOSE_AT: u64 = EXP * 1000 + GRACE_MS;

/// Auth on, heartbeats and presence stats off (so that the only timers
/// are expiries).
fn auth_config() -> EngineConfig {
    EngineConfig {
        heartbeat_interval_ms: 0,
        presence_stats_interval_ms: 0,
        auth: Some(AuthPolicy { grace_ms: GRACE_MS }),
        ..EngineConfig::default()
    }
}

fn auth_on() -> Harness {
    Harness::with_config(auth_config())
}

fn id(sub: &str) -> Identity {
    Identity {
        sub: sub.into(),
        exp: EXP,
        rooms: None,
    }
}

fn id_in(sub: &str, rooms: &[&str]) -> Identity {
    Identity {
        rooms: Some(rooms.iter().map(|r| r.to_string()).collect()),
        ..id(sub)
    }
}

fn id_until(sub: &str, exp: u64) -> Identity {
    Identity { exp, ..id(sub) }
}

/// Connects on the protocol's default path with `identity`.
fn connect(h: &mut Harness, protocol: Protocol, identity: Identity) -> ConnId {
    h.connect_as(
        protocol,
        &format!("/{}", protocol.name()),
        "",
        Some(identity),
    )
}

fn auth(h: &mut Harness, conn: ConnId, result: Result<Identity, Refusal>) {
    h.input(Input::Auth { conn, result });
}

#[track_caller]
fn expect_close(h: &mut Harness, conn: ConnId, reason: CloseReason) {
    assert_eq!(h.take(conn), vec![Output::Close { conn, reason }]);
}

/// `{"type":"error","message":M}` (no quote or backslash in `M`).
fn error(message: &str) -> String {
    format!(r#"{{"type":"error","message":"{message}"}}"#)
}

// --- presence ---

#[test]
fn presence_user_is_the_sub_with_the_number_rule() {
    let mut h = auth_on();
    let a = connect(&mut h, Presence, id("42"));
    let hello = h.received_json(a);
    assert_eq!(hello[0]["userId"], 42, "{hello:?}");
    assert_eq!(hello[0]["connectionId"], format!("42-{T0}"));
    assert_eq!(hello[1]["userIds"], serde_json::json!([42]));
    let b = h.connect_as(Presence, "/presence", "userId=alice", Some(id("alice")));
    assert_eq!(
        h.received_json(b)[1]["userIds"],
        serde_json::json!([42, "alice"])
    );
    assert_eq!(h.received_json(a)[0]["userId"], "alice");
    assert_eq!(h.engine.online_users("/presence"), ["42", "alice"]);
}

#[test]
fn presence_refuses_a_user_id_other_than_the_sub() {
    let mut h = auth_on();
    let watcher = connect(&mut h, Presence, id("w"));
    h.received(watcher);
    let a = h.connect_as(Presence, "/presence", "userId=bob", Some(id("alice")));
    expect_close(&mut h, a, CloseReason::UserIdNotSubject);
    // The text must be equal: 42 and 042 are one JSON number, not one sub.
    let b = h.connect_as(Presence, "/presence", "userId=042", Some(id("42")));
    expect_close(&mut h, b, CloseReason::UserIdNotSubject);
    h.expect_nothing(watcher);
    assert_eq!(h.engine.online_users("/presence"), ["w"]);
    // An anonymous connection still needs its userId.
    let c = h.connect_with(Presence, "/presence", "");
    let missing = roomd::protocol::presence::UserIdError::Missing;
    expect_close(&mut h, c, CloseReason::InvalidUserId(missing));
}

// --- stream ---

fn join_stream(room: &str, user: &str) -> String {
    format!(r#"{{"type":"join-room","roomId":"{room}","userId":"{user}","userName":"N"}}"#)
}

#[test]
fn stream_join_must_name_the_sub() {
    let mut h = auth_on();
    let other = connect(&mut h, Stream, id("bob"));
    h.send(other, &join_stream("r", "bob"));
    h.received(other);
    let a = connect(&mut h, Stream, id("alice"));
    h.send(a, &join_stream("r", "bob"));
    h.expect(a, &[&error("userId does not match token")]);
    h.expect_nothing(other);
    assert_eq!(h.engine.members("/stream", "r"), Some(vec![other]));
    h.send(a, &join_stream("r", "alice"));
    assert_eq!(h.received_json(a)[0]["type"], "room-joined");
    assert_eq!(h.received_json(other)[0]["type"], "user-joined");
    // An anonymous connection on the same route may name anyone.
    let anon = h.connect(Stream);
    h.send(anon, &join_stream("r2", "carol"));
    assert_eq!(h.received_json(anon)[0]["type"], "room-joined");
}

#[test]
fn stream_rooms_claim() {
    let mut h = auth_on();
    let a = connect(&mut h, Stream, id_in("alice", &["team-*", "lobby"]));
    h.send(a, &join_stream("lobby2", "alice"));
    h.expect(a, &[&error("Not allowed in room lobby2")]);
    assert_eq!(h.engine.members("/stream", "lobby2"), None);
    assert_eq!(h.engine.room_count(), 0);
    for room in ["lobby", "team-red"] {
        h.send(a, &join_stream(room, "alice"));
        assert_eq!(h.received_json(a)[0]["type"], "room-joined", "{room}");
    }
    h.send(a, &join_stream("team", "alice"));
    h.expect(a, &[&error("Not allowed in room team")]);
    assert_eq!(h.engine.members("/stream", "lobby"), Some(vec![a]));
}

// --- scratch ---

#[test]
fn scratch_rooms_claim_and_a_refused_join_keeps_the_session() {
    let mut h = auth_on();
    let a = connect(&mut h, Scratch, id_in("alice", &["s-*"]));
    let b = connect(&mut h, Scratch, id("bob"));
    h.send(b, r#"{"type":"join","sessionId":"s-1"}"#);
    h.received(b);
    h.send(a, r#"{"type":"join","sessionId":"s-1"}"#);
    assert_eq!(h.received_json(a)[0]["type"], "joined");
    assert_eq!(h.received_json(b)[0]["type"], "user-joined");
    h.send(a, r#"{"type":"join","sessionId":"other"}"#);
    h.expect(a, &[&error("Not allowed in room other")]);
    h.expect_nothing(b);
    assert_eq!(h.engine.members("/scratch", "s-1"), Some(vec![b, a]));
    assert_eq!(h.engine.members("/scratch", "other"), None);
    h.send(a, r#"{"type":"sync","sessionId":"s-1","changes":[1]}"#);
    assert_eq!(h.received_json(b)[0]["changes"], serde_json::json!([1]));
    // Anyone without a claim goes anywhere.
    h.send(b, r#"{"type":"join","sessionId":"other"}"#);
    assert_eq!(h.received_json(b)[1]["type"], "joined");
}

// --- signal ---

fn create_room(h: &mut Harness, conn: ConnId) -> String {
    h.send(conn, r#"{"type":"create-room"}"#);
    let reply = h.received_json(conn);
    assert_eq!(reply[0]["type"], "room-created", "{reply:?}");
    reply[0]["roomId"].as_str().unwrap().to_string()
}

#[test]
fn signal_rooms_claim_limits_join_by_id_and_create_needs_a_star() {
    let mut h = auth_on();
    let host = connect(&mut h, Signal, id_in("h", &["*"]));
    let room = create_room(&mut h, host);
    let narrow = connect(&mut h, Signal, id_in("n", &["100000"]));
    h.send(narrow, r#"{"type":"create-room"}"#);
    h.expect(narrow, &[&error("Not allowed in room *")]);
    assert_eq!(h.engine.room_count(), 1);
    if room != "100000" {
        h.send(
            narrow,
            &format!(r#"{{"type":"join-room","roomId":"{room}"}}"#),
        );
        h.expect(narrow, &[&error(&format!("Not allowed in room {room}"))]);
        h.expect_nothing(host);
        assert_eq!(h.engine.members("/signal", &room), Some(vec![host]));
    }
    // Refused before existence is looked at: nothing leaks.
    h.send(narrow, r#"{"type":"join-room","roomId":"999999x"}"#);
    h.expect(narrow, &[&error("Not allowed in room 999999x")]);
    let prefix = &room[..3];
    let guest = connect(&mut h, Signal, id_in("g", &[&format!("{prefix}*")]));
    h.send(
        guest,
        &format!(r#"{{"type":"join-room","roomId":"{room}"}}"#),
    );
    let joined = format!(r#"{{"type":"peer-joined","roomId":"{room}"}}"#);
    h.expect(guest, &[&joined]);
    h.expect(host, &[&joined]);
    // A prefix claim cannot create: the new id is random.
    h.send(guest, r#"{"type":"create-room"}"#);
    h.expect(guest, &[&error("Not allowed in room *")]);
    // No claim: anything.
    let free = connect(&mut h, Signal, id("f"));
    create_room(&mut h, free);
}

// --- chat ---

/// Chat's `auth` reply at [`TS0`] (no quote or backslash in `message`).
fn auth_reply(success: bool, message: &str) -> String {
    format!(
        r#"{{"type":"auth","payload":{{"success":{success},"message":"{message}"}},"timestamp":"{TS0}"}}"#
    )
}

#[test]
fn chat_auth_is_checked_and_answered_in_the_seed_shape() {
    let mut h = auth_on();
    let a = connect(&mut h, Chat, id("alice"));
    h.received(a);
    auth(&mut h, a, Ok(id_until("alice", EXP + 60)));
    h.expect(a, &[&auth_reply(true, "Authenticated")]);
    auth(&mut h, a, Err(Refusal::Signature));
    h.expect(a, &[&auth_reply(false, "token refused: signature")]);
    // An auth message without a token reaching the engine as text.
    h.send(a, r#"{"type":"auth","payload":{}}"#);
    h.expect(a, &[&auth_reply(false, "token refused: missing")]);
    auth(&mut h, a, Err(Refusal::Missing));
    h.expect(a, &[&auth_reply(false, "token refused: missing")]);
    assert_eq!(h.engine.stats().of(Chat).errors_sent, 3);
    assert_eq!(h.engine.stats().of(Chat).messages_in, 4);
}

#[test]
fn other_protocols_answer_a_refused_token_with_their_error_and_a_valid_one_with_nothing() {
    let mut h = auth_on();
    let p = connect(&mut h, Presence, id("p"));
    h.received(p);
    auth(&mut h, p, Err(Refusal::Expired));
    h.expect(
        p,
        &[r#"{"type":"ERROR","message":"token refused: expired"}"#],
    );
    for protocol in [Scratch, Signal, Stream] {
        let c = connect(&mut h, protocol, id("s"));
        auth(&mut h, c, Err(Refusal::Audience));
        h.expect(c, &[&error("token refused: audience")]);
        auth(&mut h, c, Ok(id_until("s", EXP + 60)));
        h.expect_nothing(c);
    }
}

// --- expiry ---

#[test]
fn an_expired_connection_is_closed_after_the_grace_and_not_before() {
    let mut h = auth_on();
    let watcher = connect(&mut h, Presence, id_until("w", EXP + 3600));
    let a = connect(&mut h, Presence, id("alice"));
    h.received(watcher);
    h.received(a);
    assert_eq!(h.engine.poll_timeout(), Some(CLOSE_AT));
    h.run_until(CLOSE_AT - 1);
    h.expect_nothing(a);
    assert_eq!(h.run_until(CLOSE_AT), [CLOSE_AT]);
    expect_close(&mut h, a, CloseReason::TokenExpired);
    assert_eq!(h.received_json(watcher)[0]["type"], "USER_OFFLINE");
    assert_eq!(h.engine.connection_count(), 1);
    // A late close from the peer is a no-op.
    h.close(a);
    h.expect_nothing(a);
}

#[test]
fn the_deadline_rounds_up_to_the_granule() {
    let mut h = Harness::with_config(EngineConfig {
        auth: Some(AuthPolicy { grace_ms: 1_500 }),
        ..EngineConfig::default()
    });
    let a = connect(&mut h, Chat, id("alice"));
    h.received(a);
    // One late wake-up: the heartbeat pings, nothing closes yet.
    h.advance(EXP * 1000 + 1_999 - h.now);
    assert_eq!(h.take(a), vec![Output::Ping { conn: a }]);
    h.advance(1);
    expect_close(&mut h, a, CloseReason::TokenExpired);
}

#[test]
fn a_refresh_moves_the_deadline() {
    let mut h = auth_on();
    let a = connect(&mut h, Stream, id("alice"));
    h.run_until(CLOSE_AT - 5_000);
    auth(&mut h, a, Ok(id_until("alice", EXP + 600)));
    let new_close = (EXP + 600) * 1000 + GRACE_MS;
    assert_eq!(h.engine.poll_timeout(), Some(new_close));
    h.run_until(new_close - 1);
    h.expect_nothing(a);
    h.run_until(new_close);
    expect_close(&mut h, a, CloseReason::TokenExpired);
    assert_eq!(h.engine.poll_timeout(), None);
}

#[test]
fn a_refused_refresh_does_not_extend() {
    let mut h = auth_on();
    let a = connect(&mut h, Signal, id("alice"));
    h.run_until(EXP * 1000 + 1);
    auth(&mut h, a, Err(Refusal::Signature));
    h.received(a);
    h.run_until(CLOSE_AT);
    expect_close(&mut h, a, CloseReason::TokenExpired);
}

#[test]
fn a_token_for_another_sub_closes_at_once() {
    let mut h = auth_on();
    let a = connect(&mut h, Stream, id("alice"));
    let b = connect(&mut h, Stream, id("bob"));
    h.send(a, &join_stream("r", "alice"));
    h.send(b, &join_stream("r", "bob"));
    h.received(a);
    h.received(b);
    auth(&mut h, a, Ok(id_until("mallory", EXP + 600)));
    expect_close(&mut h, a, CloseReason::SubjectChanged);
    assert_eq!(h.received_json(b)[0]["type"], "user-left");
    assert_eq!(h.engine.members("/stream", "r"), Some(vec![b]));
}

#[test]
fn an_anonymous_connection_can_authenticate_in_band() {
    let mut h = auth_on();
    let c = h.connect(Chat);
    h.received(c);
    assert_eq!(h.engine.poll_timeout(), None);
    auth(&mut h, c, Ok(id("alice")));
    h.expect(c, &[&auth_reply(true, "Authenticated")]);
    assert_eq!(h.engine.poll_timeout(), Some(CLOSE_AT));
    // Presence: the token must name the userId the connection opened with.
    let bob = h.connect_with(Presence, "/presence", "userId=bob");
    let eve = h.connect_with(Presence, "/presence", "userId=eve");
    h.take(bob);
    h.take(eve);
    auth(&mut h, bob, Ok(id("bob")));
    h.expect_nothing(bob);
    auth(&mut h, eve, Ok(id("mallory")));
    expect_close(&mut h, eve, CloseReason::SubjectChanged);
    h.run_until(CLOSE_AT);
    expect_close(&mut h, c, CloseReason::TokenExpired);
    let bob_out = h.take(bob);
    assert_eq!(
        bob_out.last(),
        Some(&Output::Close {
            conn: bob,
            reason: CloseReason::TokenExpired
        })
    );
}

// --- auth off ---

#[test]
fn with_auth_off_identities_and_auth_inputs_are_ignored() {
    let mut h = Harness::new();
    let a = connect(&mut h, Stream, id_in("alice", &["nowhere"]));
    h.send(a, &join_stream("r", "bob"));
    assert_eq!(h.received_json(a)[0]["type"], "room-joined");
    auth(&mut h, a, Err(Refusal::Signature));
    auth(&mut h, a, Ok(id("mallory")));
    h.expect_nothing(a);
    let p = h.connect_as(Presence, "/presence", "userId=bob", Some(id("alice")));
    assert_eq!(h.received_json(p)[0]["userId"], "bob");
    // Only the heartbeat is due, never an expiry.
    assert_eq!(h.engine.poll_timeout(), Some(T0 + 30_000));
    assert_eq!(h.engine.stats().of(Stream).messages_in, 1);
}

// --- determinism and journals ---

/// A session on every protocol; `auth`: with identities and in-band
/// tokens, else the same without them.
fn session(auth: bool) -> Vec<Input> {
    let open = |conn, protocol: Protocol, query: &str, identity: Identity| Input::Open {
        conn: ConnId(conn),
        protocol,
        path: format!("/{}", protocol.name()),
        query: query.into(),
        peer: None,
        identity: auth.then_some(identity),
    };
    let text = |conn, text: &str| Input::Text {
        conn: ConnId(conn),
        text: text.into(),
    };
    let tokens = [
        (2, Err(Refusal::Expired)),
        (1, Ok(id_until("alice", EXP + 5))),
        (3, Ok(id("8"))),
    ];
    let mut inputs = vec![
        open(1, Stream, "", id_in("alice", &["r*"])),
        open(2, Chat, "", id("bob")),
        open(3, Presence, "userId=7", id("7")),
        text(1, &join_stream("r1", "alice")),
        text(1, &join_stream("x", "alice")),
    ];
    if auth {
        inputs.extend(tokens.map(|(conn, result)| Input::Auth {
            conn: ConnId(conn),
            result,
        }));
    }
    inputs.push(Input::Timeout);
    inputs
}

/// Runs `inputs` (one at each listed time) and journals them.
fn journal_of(config: &EngineConfig, inputs: &[(u64, Input)]) -> (Vec<u8>, Vec<Vec<Output>>) {
    let mut engine = Engine::new(config.clone(), 9);
    let mut out = Vec::new();
    let mut all = Vec::new();
    let mut journal = JournalWriter::new(&mut out, 9, config);
    for (now, input) in inputs {
        engine.handle(*now, input.clone());
        let outputs: Vec<Output> = engine.drain_outputs().collect();
        journal.record(*now, input, &outputs);
        all.push(outputs);
    }
    journal.flush();
    drop(journal);
    (out, all)
}

fn timed(inputs: Vec<Input>) -> Vec<(u64, Input)> {
    let n = inputs.len() as u64;
    let mut timed: Vec<(u64, Input)> = inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| (T0 + i as u64, input))
        .collect();
    // The last input (the timeout) comes after every deadline.
    timed[n as usize - 1].0 = CLOSE_AT + 10_000;
    timed
}

#[test]
fn identities_are_deterministic_and_journal_round_trips() {
    let inputs = timed(session(true));
    let (journal, outputs) = journal_of(&auth_config(), &inputs);
    let (again, outputs_again) = journal_of(&auth_config(), &inputs);
    assert_eq!(journal, again);
    assert_eq!(outputs, outputs_again);
    // The session did what it says: a refusal, a 4403 and two expiries.
    let closes: Vec<&Output> = outputs
        .iter()
        .flatten()
        .filter(|o| matches!(o, Output::Close { .. }))
        .collect();
    assert_eq!(closes.len(), 3, "{closes:?}");
    let text = String::from_utf8(journal.clone()).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains(r#""auth":{"grace_ms":30000}"#)
    );
    assert!(
        text.contains(r#""identity":{"sub":"alice","exp":"#),
        "{text}"
    );
    assert!(text.contains(r#""result":{"Err":"expired"}"#), "{text}");
    assert!(!text.contains("token\""), "{text}");
    let reader = JournalReader::new(&journal[..]).unwrap();
    assert_eq!(reader.header().config, auth_config());
    let read: Vec<Input> = reader.map(|e| e.unwrap().record.input).collect();
    let expected: Vec<Input> = inputs.into_iter().map(|(_, i)| i).collect();
    assert_eq!(read, expected);
    match roomd::replay::check(&journal[..]).unwrap() {
        roomd::replay::CheckOutcome::Identical(r) => assert_eq!(r.inputs, 9),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_journal_without_auth_has_no_trace_of_it() {
    let config = EngineConfig::default();
    let inputs = timed(session(false));
    let (journal, _) = journal_of(&config, &inputs);
    let text = String::from_utf8(journal).unwrap();
    assert!(
        !text.contains("auth") && !text.contains("identity"),
        "{text}"
    );
    let open = text.lines().nth(1).unwrap();
    assert!(open.starts_with(r#"{"time":1704110400000,"input":{"kind":"open","conn":1,"protocol":"stream","path":"/stream","query":"","peer":null},"digest":""#), "{open}");
}

#[test]
fn roomd_replay_checks_a_journal_with_identities() {
    let (journal, _) = journal_of(&auth_config(), &timed(session(true)));
    let path = std::env::temp_dir().join(format!("roomd-{}-identity.jsonl", std::process::id()));
    std::fs::write(&path, &journal).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roomd"))
        .args(["replay", "--check", path.to_str().unwrap()])
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("identical: 9 inputs"));
}
