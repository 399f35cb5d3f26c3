//! Hostile WebSocket clients over real sockets: odd splits, fragments,
//! lying lengths, half-closes, bad close frames, floods. Each ends in a
//! documented close code or is handled normally, and other connections
//! are unaffected.

use crate::live::raw::{Raw, close_frame, frame};
use crate::live::{TestServer, eventually, metric};
use roomd::server::Config;
use serde_json::json;
use std::time::{Duration, Instant};

const PING: &[u8] = br#"{"type":"ping"}"#;

fn chat(payload: &str) -> Vec<u8> {
    frame(
        true,
        0x1,
        json!({"type": "chat", "payload": payload})
            .to_string()
            .as_bytes(),
    )
}

fn open_sockets_back_to(server: &TestServer, n: u64) {
    eventually("WebSockets to be closed", || {
        metric(server, "roomd_websockets_open") == n
    });
}

#[test]
fn a_frame_in_the_same_write_as_the_handshake_is_processed() {
    let server = TestServer::default();
    let mut raw = Raw::upgrade(server.addr, "/chat", &frame(true, 0x1, PING));
    assert_eq!(raw.json()["type"], "system");
    assert_eq!(raw.json()["type"], "pong");
    // A message larger than the request-head buffer, in the same write.
    let big = "b".repeat(100_000);
    let mut raw = Raw::upgrade(server.addr, "/chat", &[chat(&big), chat("next")].concat());
    assert_eq!(raw.json()["type"], "system");
    assert_eq!(raw.json()["payload"], big);
    assert_eq!(raw.json()["payload"], "next");
}

#[test]
fn a_session_sent_one_byte_per_write_works() {
    let server = TestServer::default();
    let mut raw = Raw::connect(server.addr);
    raw.send_bytewise(crate::live::upgrade_request("/chat", "").as_bytes());
    assert!(raw.head().starts_with("HTTP/1.1 101 "));
    assert_eq!(raw.json()["type"], "system");
    let mut bytes = frame(true, 0x1, PING);
    bytes.extend(chat("slowly"));
    raw.send_bytewise(&bytes);
    assert_eq!(raw.json()["type"], "pong");
    assert_eq!(raw.json()["payload"], "slowly");
}

#[test]
fn fragmented_messages_with_a_ping_between_fragments() {
    let server = TestServer::default();
    let text = json!({"type": "chat", "payload": "in three parts"}).to_string();
    let (a, rest) = text.as_bytes().split_at(10);
    let (b, c) = rest.split_at(10);
    let parts = [
        frame(false, 0x1, a),
        frame(true, 0x9, b"between"),
        frame(false, 0x0, b),
        frame(true, 0x0, c),
    ];
    // All in one write, and one frame per write.
    let mut raw = Raw::upgrade(server.addr, "/chat", &parts.concat());
    assert_eq!(raw.json()["type"], "system");
    assert_eq!(raw.frame(), Some((0xA, b"between".to_vec())), "pong first");
    assert_eq!(raw.json()["payload"], "in three parts");
    let mut raw = Raw::upgrade(server.addr, "/chat", b"");
    assert_eq!(raw.json()["type"], "system");
    for part in &parts {
        raw.send(part);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(raw.frame(), Some((0xA, b"between".to_vec())));
    assert_eq!(raw.json()["payload"], "in three parts");
}

#[test]
fn broken_fragment_sequences_close_1002() {
    let server = TestServer::default();
    let cases = [
        ("continuation with nothing started", frame(true, 0x0, b"x")),
        (
            "new message inside a fragmented one",
            [frame(false, 0x1, b"a"), frame(true, 0x1, b"b")].concat(),
        ),
        ("fragmented ping", frame(false, 0x9, b"p")),
        ("ping over 125 bytes", frame(true, 0x9, &[b'p'; 126])),
        ("reserved control opcode", frame(true, 0xB, b"")),
        ("RSV1 without an extension", {
            let mut f = frame(true, 0x1, PING);
            f[0] |= 0x40;
            f
        }),
    ];
    for (what, bytes) in cases {
        let mut raw = Raw::upgrade(server.addr, "/chat", &bytes);
        assert_eq!(raw.close_code(), 1002, "{what}");
    }
    open_sockets_back_to(&server, 0);
}

#[test]
fn huge_declared_lengths_close_1009_without_waiting_for_the_payload() {
    let server = TestServer::start(Config {
        max_message_size: 1024,
        ..Config::default()
    });
    let mut witness = server.ws("/chat");
    witness.recv_type("system");
    for len in [1025u64, 1 << 40, (1 << 63) - 1] {
        let mut header = vec![0x81, 0x80 | 127];
        header.extend_from_slice(&len.to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        header.extend_from_slice(b"only a few payload bytes");
        let start = Instant::now();
        let mut raw = Raw::upgrade(server.addr, "/chat", &header);
        assert_eq!(raw.close_code(), 1009, "declared {len}");
        assert!(start.elapsed() < Duration::from_secs(1), "declared {len}");
    }
    // Fragments that add up to more than the limit.
    let fragments = [
        frame(false, 0x1, &[b'a'; 600]),
        frame(true, 0x0, &[b'b'; 600]),
    ];
    let mut raw = Raw::upgrade(server.addr, "/chat", &fragments.concat());
    assert_eq!(raw.close_code(), 1009);
    let start = Instant::now();
    assert!(raw.ends(), "the server ends its side after the close frame");
    assert!(start.elapsed() < Duration::from_millis(500));
    drop(raw);
    // Even a length with the most significant bit set (invalid) is too big.
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&u64::MAX.to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    let code = Raw::upgrade(server.addr, "/chat", &header).close_code();
    assert_eq!(code, 1009);
    witness.send_json(json!({"type": "ping"}));
    assert_eq!(witness.recv()["type"], "pong", "others unaffected");
    open_sockets_back_to(&server, 1);
}

#[test]
fn a_client_that_half_closes_mid_frame_leaves_its_session() {
    let server = TestServer::default();
    let mut a = server.ws("/scratch");
    a.send_json(json!({"type": "join", "sessionId": "s"}));
    a.recv_type("joined");
    let join = frame(true, 0x1, crate::live::JOIN_SESSION_S.as_bytes());
    let mut b = Raw::upgrade(server.addr, "/scratch", &join);
    assert_eq!(b.json()["type"], "joined");
    let user = a.recv_type("user-joined")["userId"].clone();
    let sync = frame(true, 0x1, br#"{"type":"sync","sessionId":"s","changes":1}"#);
    b.send(&sync[..9]);
    b.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(a.recv_type("user-left")["userId"], user);
    assert!(b.ends(), "the server closes its side too");
    open_sockets_back_to(&server, 1);
}

#[test]
fn frames_after_the_client_close_frame_are_ignored() {
    let server = TestServer::default();
    let mut a = server.ws("/chat");
    a.recv_type("system");
    let mut bytes = close_frame(1000, b"bye");
    bytes.extend(chat("after close, same write"));
    let mut b = Raw::upgrade(server.addr, "/chat", &bytes);
    b.send(&chat("after close, later write"));
    assert_eq!(b.close_code(), 1000, "close echoed");
    assert!(b.ends());
    a.send_json(json!({"type": "chat", "payload": "mine"}));
    assert_eq!(
        a.recv_type("chat")["payload"],
        "mine",
        "nothing after the close frame was broadcast"
    );
    open_sockets_back_to(&server, 1);
}

#[test]
fn a_client_that_never_answers_the_servers_close_is_dropped_after_the_grace() {
    let server = TestServer::default();
    let mut raw = Raw::upgrade(server.addr, "/chat", &[]);
    // Long enough for the once-a-second sweep to stop looking at it.
    std::thread::sleep(Duration::from_millis(2200));
    // A binary frame on `/chat` makes the engine close with 1003.
    raw.send(&frame(true, 0x2, &[1, 2, 3]));
    assert_eq!(raw.close_code(), 1003);
    let started = Instant::now();
    // No close frame back: the socket must still go, after the 2 s grace.
    assert!(raw.ends(), "the server kept a half-closed WebSocket");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "dropped before the grace: {:?}",
        started.elapsed()
    );
    open_sockets_back_to(&server, 0);
}

#[test]
fn invalid_close_frames_close_1002_or_1007() {
    let server = TestServer::default();
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let mut raw = Raw::upgrade(server.addr, "/chat", &close_frame(code, b""));
        assert_eq!(raw.close_code(), 1002, "client close code {code}");
    }
    let one_byte = frame(true, 0x8, &[3]);
    assert_eq!(
        Raw::upgrade(server.addr, "/chat", &one_byte).close_code(),
        1002
    );
    let bad_reason = close_frame(1000, &[0xff, 0xfe]);
    assert_eq!(
        Raw::upgrade(server.addr, "/chat", &bad_reason).close_code(),
        1007
    );
    for code in [1000u16, 1001, 3000, 4999] {
        let mut raw = Raw::upgrade(server.addr, "/chat", &close_frame(code, b"ok"));
        let echoed = raw.close_code();
        assert_eq!(echoed, code, "the close code is echoed");
        assert!(raw.ends());
    }
    open_sockets_back_to(&server, 0);
}

#[test]
fn a_flooding_client_does_not_harm_others_in_its_session() {
    let rate = 50;
    let server = TestServer::start(Config {
        rate_limit: rate,
        ..Config::default()
    });
    let (mut receiver, mut sender, sender_id) = crate::live::scratch_pair(&server);
    // The flooder joins, then writes thousands of messages and never reads.
    let start = Instant::now();
    let mut flood = frame(true, 0x1, crate::live::JOIN_SESSION_S.as_bytes());
    for i in 0..5000 {
        let sync = json!({"type": "sync", "sessionId": "s", "changes": {"flood": i}});
        flood.extend(frame(true, 0x1, sync.to_string().as_bytes()));
    }
    let _flooder = Raw::upgrade(server.addr, "/scratch", &flood);
    const N: usize = 50;
    for seq in 0..N {
        sender.send_json(json!({"type": "sync", "sessionId": "s", "changes": {"seq": seq}}));
    }
    let (mut seen, mut flooded) = (0, 0);
    while seen < N {
        let m = receiver.recv_type("sync");
        if m["userId"] == sender_id {
            assert_eq!(m["changes"]["seq"], seen, "in order, none lost");
            seen += 1;
        } else {
            flooded += 1;
        }
    }
    let allowed = 2.0 * f64::from(rate) + f64::from(rate) * start.elapsed().as_secs_f64() + 5.0;
    assert!(
        (flooded as f64) <= allowed,
        "{flooded} flood messages passed, at most {allowed} allowed"
    );
    eventually("the flood to be refused", || {
        metric(&server, "roomd_rate_limited_total{protocol=\"scratch\"}") >= 4000
    });
}

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Frames that are valid, nearly valid or garbage, in random order.
fn random_frames(rng: &mut Rng) -> Vec<u8> {
    const FIRST_BYTES: [u8; 9] = [0x81, 0x01, 0x00, 0x80, 0x89, 0x8a, 0x88, 0x82, 0xc1];
    let mut out = Vec::new();
    for _ in 0..rng.below(8) {
        if rng.below(3) == 0 {
            out.extend(chat("fine"));
            continue;
        }
        let first = if rng.below(4) == 0 {
            rng.next() as u8
        } else {
            FIRST_BYTES[rng.below(FIRST_BYTES.len() as u64)]
        };
        let n = if rng.below(2) == 0 { 300 } else { 20 };
        let n = rng.below(n);
        let payload = rng.bytes(n);
        let mut f = frame(true, 0, &payload);
        f[0] = first;
        if rng.below(8) == 0 {
            f[1] &= 0x7f; // unmasked
        }
        if rng.below(16) == 0 {
            f.truncate(2);
            f[1] = 0x80 | 127;
            f.extend(rng.bytes(12)); // a random 64-bit length, mask, 2 bytes
        }
        out.extend(f);
    }
    out
}

#[test]
fn random_frames_and_requests_never_harm_the_server() {
    const ROUNDS: usize = 300;
    let server = TestServer::default();
    let mut witness = server.ws("/chat");
    witness.recv_type("system");
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for i in 0..ROUNDS {
        let mut bytes = crate::live::upgrade_request("/chat", "").into_bytes();
        if i % 3 == 0 {
            // Mutate the request head itself.
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len() as u64);
                bytes[at] = rng.next() as u8;
            }
        }
        bytes.extend(random_frames(&mut rng));
        let mut raw = Raw::connect(server.addr);
        raw.send(&bytes);
        if i % 2 == 0 {
            raw.send(&random_frames(&mut rng));
        }
    }
    witness.send_json(json!({"type": "ping"}));
    let mut broadcasts = 0;
    loop {
        let m = witness.recv();
        if m["type"] == "pong" {
            break;
        }
        broadcasts += usize::from(m["payload"] == "fine");
    }
    assert!(broadcasts > 10, "valid frames got through: {broadcasts}");
    eventually("every random socket to be released", || {
        metric(&server, "roomd_sockets_open") == 2
    });
    open_sockets_back_to(&server, 1);
}
