//! WebSocket conformance over real sockets, after RFC 6455 and the
//! Autobahn|Testsuite sections 1-7 and 9, as far as they apply to a server
//! that does not echo: the `/chat` route answers `{"type":"x","payload":P}`
//! with `{"type":"x","payload":P,"timestamp":...}`, which is what shows a
//! message was received whole.
//!
//! [`errors`] holds one test per way a client can break the protocol: a
//! valid message, the bad bytes and another valid message, in one write.
//! As Node's `ws` does, the first message is answered, then the close frame
//! with the code of PROTOCOLS.md comes, the TCP connection ends once the
//! client has answered the close, and the third message is never answered.

use crate::live::raw::{Raw, close_frame, frame};
use crate::live::{TestServer, eventually_within, metric};
use roomd::server::CLOSE_GRACE_MS;
use roomd::server::Config;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How soon the server ends the TCP connection once the close handshake
/// is complete (loopback: any delay is the server waiting for something).
const PROMPTLY: Duration = Duration::from_millis(500);

/// A chat message the server echoes with `payload`.
fn x(payload: &str) -> Vec<u8> {
    json!({"type": "x", "payload": payload})
        .to_string()
        .into_bytes()
}

/// `x(payload)` in one text frame.
fn x_frame(payload: &str) -> Vec<u8> {
    frame(true, 0x1, &x(payload))
}

/// A text message in fragments, each part as given.
fn fragmented(parts: &[&[u8]]) -> Vec<u8> {
    let last = parts.len() - 1;
    let opcode = |i| if i == 0 { 0x1 } else { 0x0 };
    let frames = parts.iter().enumerate();
    frames
        .flat_map(|(i, p)| frame(i == last, opcode(i), p))
        .collect()
}

/// Connects to `/chat` and reads the greeting.
fn chat(server: &TestServer) -> Raw {
    let mut raw = Raw::upgrade(server.addr, "/chat", &[]);
    assert_eq!(raw.json()["type"], "system", "the greeting");
    raw
}

/// The payload of the server's echo, read as the next frame (pings from
/// the server skipped).
fn echo(raw: &mut Raw) -> Value {
    raw.json()["payload"].clone()
}

/// The code of a close frame's payload (1005 for none).
fn code_of(payload: &[u8]) -> u16 {
    match payload {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 1005,
    }
}

/// A server frame in words: `answer P` (the echoed payload), `close N`,
/// `pong P` and the like, so that a failure shows what came.
fn describe((opcode, payload): &(u8, Vec<u8>)) -> String {
    let text = String::from_utf8_lossy(payload);
    match opcode {
        0x1 => match serde_json::from_slice::<Value>(payload) {
            Ok(json) => format!("answer {}", json["payload"]),
            Err(_) => format!("text {text:?}"),
        },
        0x8 => {
            let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or_default());
            format!("close {} {reason:?}", code_of(payload))
        }
        0x9 => format!("ping {text:?}"),
        0xA => format!("pong {text:?}"),
        _ => format!("opcode {opcode:#x} {text:?}"),
    }
}

/// Asserts that the server sends nothing more and ends the TCP connection
/// in order (an end of stream, not a reset) within `limit` of `since`.
fn ends_cleanly(raw: &mut Raw, case: &str, since: Instant, limit: Duration) {
    let (rest, end) = raw.frames_until_eof();
    let rest: Vec<String> = rest.iter().map(describe).collect();
    assert!(rest.is_empty(), "{case}: frames after the close: {rest:?}");
    end.unwrap_or_else(|e| panic!("{case}: no orderly TCP close: {e}"));
    let took = since.elapsed();
    assert!(took < limit, "{case}: the TCP close took {took:?}");
}

/// What the client does once it has the server's close frame.
#[derive(Clone, Copy)]
enum Then {
    /// Sends its own close frame, as a client does.
    AnswersTheClose,
    /// Nothing: the bad bytes were its close frame.
    HasClosedAlready,
}

/// Sends a valid message, `bad`, and another valid message in one write;
/// the first is answered, then a close frame with `code` comes, then (once
/// the client answered the close) an orderly end of the TCP connection,
/// promptly, and nothing else. `case` names the case in every failure.
fn answered_then_closed(case: &str, bad: &[u8], code: u16, then: Then) {
    let server = TestServer::start(Config {
        max_message_size: errors::MAX_MESSAGE_SIZE,
        ..Config::default()
    });
    let mut raw = chat(&server);
    raw.send(&[x_frame("before"), bad.to_vec(), x_frame("after")].concat());
    let mut before_close = Vec::new();
    let close = loop {
        match raw.frame() {
            Some((0x8, payload)) => break payload,
            Some((0x9, _)) => {}
            Some(frame) => before_close.push(describe(&frame)),
            None => panic!("{case}: the connection ended with no close frame: {before_close:?}"),
        }
    };
    assert_eq!(
        before_close,
        [r#"answer "before""#],
        "{case}: before the close frame, the first message (only) must be answered"
    );
    assert_eq!(
        code_of(&close),
        code,
        "{case}: close code (close frame {:?})",
        String::from_utf8_lossy(&close)
    );
    let handshake_done = Instant::now();
    if let Then::AnswersTheClose = then {
        raw.send(&close_frame(code, b""));
    }
    // The third message's answer would show here.
    ends_cleanly(&mut raw, case, handshake_done, PROMPTLY);
}

/// One test per way of breaking the protocol; every one answers the
/// message before it first. These define the fix of "everything a client
/// sent before a protocol error is processed and answered first".
mod errors {
    use super::{Then, answered_then_closed, fragmented};
    use crate::live::raw::{close_frame, frame, unmasked_frame};

    /// `--max-message-size` of these tests.
    pub const MAX_MESSAGE_SIZE: usize = 1024;

    /// A message the server would answer if it took it.
    const BAD: &[u8] = br#"{"type":"x","payload":"bad"}"#;

    fn with_rsv(mut frame: Vec<u8>, bits: u8) -> Vec<u8> {
        frame[0] |= bits;
        frame
    }

    /// `BAD` in two text fragments, the second changed by `second`.
    fn two_fragments(second: impl FnOnce(bool, u8, &[u8]) -> Vec<u8>) -> Vec<u8> {
        let (a, b) = BAD.split_at(10);
        [frame(false, 0x1, a), second(true, 0x0, b)].concat()
    }

    fn close_code(code: u16) -> Vec<u8> {
        close_frame(code, b"")
    }

    /// A text frame that declares `len` payload bytes and has none yet.
    fn declared_only(len: u64) -> Vec<u8> {
        let mut f = vec![0x81, 0x80 | 127];
        f.extend_from_slice(&len.to_be_bytes());
        f.extend_from_slice(&[1, 2, 3, 4]);
        f
    }

    macro_rules! cases {
        ($($name:ident: $code:literal, $then:ident, $bad:expr;)*) => {$(
            #[test]
            fn $name() {
                answered_then_closed(stringify!($name), &$bad, $code, Then::$then);
            }
        )*};
    }

    cases! {
        // Reserved bits, no extension negotiated (Autobahn 3).
        rsv1_on_text: 1002, AnswersTheClose, with_rsv(frame(true, 0x1, BAD), 0x40);
        rsv2_on_text: 1002, AnswersTheClose, with_rsv(frame(true, 0x1, BAD), 0x20);
        rsv3_on_text: 1002, AnswersTheClose, with_rsv(frame(true, 0x1, BAD), 0x10);
        rsv1_on_close: 1002, AnswersTheClose, with_rsv(close_code(1000), 0x40);
        rsv2_on_close: 1002, AnswersTheClose, with_rsv(close_code(1000), 0x20);
        rsv3_on_close: 1002, AnswersTheClose, with_rsv(close_code(1000), 0x10);
        rsv1_on_continuation: 1002, AnswersTheClose,
            two_fragments(|fin, op, p| with_rsv(frame(fin, op, p), 0x40));
        rsv2_on_continuation: 1002, AnswersTheClose,
            two_fragments(|fin, op, p| with_rsv(frame(fin, op, p), 0x20));
        rsv3_on_continuation: 1002, AnswersTheClose,
            two_fragments(|fin, op, p| with_rsv(frame(fin, op, p), 0x10));
        all_rsv_bits_on_ping: 1002, AnswersTheClose, with_rsv(frame(true, 0x9, b"p"), 0x70);

        // Reserved opcodes (Autobahn 4).
        reserved_opcode_0x3: 1002, AnswersTheClose, frame(true, 0x3, BAD);
        reserved_opcode_0x4: 1002, AnswersTheClose, frame(true, 0x4, BAD);
        reserved_opcode_0x5: 1002, AnswersTheClose, frame(true, 0x5, BAD);
        reserved_opcode_0x6: 1002, AnswersTheClose, frame(true, 0x6, BAD);
        reserved_opcode_0x7: 1002, AnswersTheClose, frame(true, 0x7, BAD);
        reserved_opcode_0xb: 1002, AnswersTheClose, frame(true, 0xB, BAD);
        reserved_opcode_0xc: 1002, AnswersTheClose, frame(true, 0xC, BAD);
        reserved_opcode_0xd: 1002, AnswersTheClose, frame(true, 0xD, BAD);
        reserved_opcode_0xe: 1002, AnswersTheClose, frame(true, 0xE, BAD);
        reserved_opcode_0xf: 1002, AnswersTheClose, frame(true, 0xF, BAD);

        // A client must mask every frame (RFC 6455 5.1).
        unmasked_text: 1002, AnswersTheClose, unmasked_frame(true, 0x1, BAD);
        unmasked_ping: 1002, AnswersTheClose, unmasked_frame(true, 0x9, b"p");
        unmasked_close: 1002, AnswersTheClose, unmasked_frame(true, 0x8, &1000u16.to_be_bytes());
        unmasked_continuation: 1002, AnswersTheClose, two_fragments(unmasked_frame);

        // Fragmentation (Autobahn 5).
        continuation_with_no_message_open: 1002, AnswersTheClose, frame(true, 0x0, BAD);
        unfinished_continuation_with_no_message_open: 1002, AnswersTheClose,
            [frame(false, 0x0, BAD), frame(true, 0x0, b"")].concat();
        text_while_a_fragmented_message_is_open: 1002, AnswersTheClose,
            two_fragments(|_, _, p| frame(true, 0x1, p));
        binary_while_a_fragmented_text_is_open: 1002, AnswersTheClose,
            two_fragments(|_, _, p| frame(true, 0x2, p));
        fragmented_ping: 1002, AnswersTheClose,
            [frame(false, 0x9, b"p"), frame(true, 0x0, b"q")].concat();
        fragmented_pong: 1002, AnswersTheClose,
            [frame(false, 0xA, b"p"), frame(true, 0x0, b"q")].concat();
        fragmented_close: 1002, AnswersTheClose,
            [frame(false, 0x8, &1000u16.to_be_bytes()), frame(true, 0x0, b"")].concat();

        // Control frames carry at most 125 bytes (Autobahn 2.5, 7.3.4).
        ping_of_126_bytes: 1002, AnswersTheClose, frame(true, 0x9, &[b'p'; 126]);
        pong_of_126_bytes: 1002, AnswersTheClose, frame(true, 0xA, &[b'p'; 126]);
        close_of_126_bytes: 1002, AnswersTheClose, close_frame(1000, &[b'r'; 124]);

        // Invalid UTF-8 anywhere in a text message (Autobahn 6).
        invalid_utf8_at_the_start: 1007, AnswersTheClose, frame(true, 0x1, b"\xffabc");
        invalid_utf8_in_the_middle: 1007, AnswersTheClose, frame(true, 0x1, b"ab\xc3\x28cd");
        invalid_utf8_at_the_end: 1007, AnswersTheClose, frame(true, 0x1, b"abcd\xff");
        utf8_overlong_encoding: 1007, AnswersTheClose, frame(true, 0x1, b"a\xc0\xafb");
        utf8_surrogate: 1007, AnswersTheClose, frame(true, 0x1, b"a\xed\xa0\x80b");
        utf8_beyond_u_10ffff: 1007, AnswersTheClose, frame(true, 0x1, b"a\xf4\x90\x80\x80");
        text_ending_inside_a_multibyte_sequence: 1007, AnswersTheClose,
            frame(true, 0x1, b"ab\xe2\x82");
        invalid_utf8_split_across_fragments: 1007, AnswersTheClose,
            fragmented(&[b"ab\xe2\x82", b"\x28cd"]);
        invalid_utf8_in_a_middle_fragment: 1007, AnswersTheClose,
            fragmented(&[b"ab", b"\xc0\xaf", b"cd"]);
        fragmented_text_ending_inside_a_multibyte_sequence: 1007, AnswersTheClose,
            fragmented(&[b"ab", b"cd\xe2\x82"]);
        // Fail fast: the text frame that follows would be a 1002 otherwise.
        invalid_utf8_in_a_first_fragment_before_the_message_ends: 1007, AnswersTheClose,
            frame(false, 0x1, b"ab\xff");

        // Close frames (Autobahn 7.3, 7.5, 7.9; RFC 6455 7.4).
        close_with_a_1_byte_payload: 1002, HasClosedAlready, frame(true, 0x8, &[0x03]);
        close_code_0: 1002, HasClosedAlready, close_code(0);
        close_code_999: 1002, HasClosedAlready, close_code(999);
        close_code_1004: 1002, HasClosedAlready, close_code(1004);
        close_code_1005: 1002, HasClosedAlready, close_code(1005);
        close_code_1006: 1002, HasClosedAlready, close_code(1006);
        close_code_1015: 1002, HasClosedAlready, close_code(1015);
        close_code_1016: 1002, HasClosedAlready, close_code(1016);
        close_code_2999: 1002, HasClosedAlready, close_code(2999);
        close_code_5000: 1002, HasClosedAlready, close_code(5000);
        close_code_65535: 1002, HasClosedAlready, close_code(65535);
        close_reason_not_utf8: 1007, HasClosedAlready, close_frame(1000, b"\xff\xfe");
        close_reason_ending_inside_a_multibyte_sequence: 1007, HasClosedAlready,
            close_frame(1000, b"ok\xe2\x82");

        // Larger than --max-message-size.
        too_big_by_a_frame_length: 1009, AnswersTheClose,
            frame(true, 0x1, &[b'a'; MAX_MESSAGE_SIZE + 1]);
        too_big_by_a_declared_length_before_its_payload: 1009, AnswersTheClose,
            declared_only(1 << 40);
        too_big_by_two_fragments: 1009, AnswersTheClose,
            fragmented(&[&[b'a'; 600], &[b'b'; 600]]);
        too_big_by_many_small_fragments: 1009, AnswersTheClose,
            fragmented(&[&[b'c'; 100][..]; 11]);
    }
}

/// A payload of each size around the 7-bit, 16-bit and 64-bit length
/// encodings is answered (Autobahn 1.1), all sent in one write.
#[test]
fn payloads_at_every_length_boundary_are_answered() {
    let server = TestServer::start(Config {
        max_message_size: 1 << 20,
        ..Config::default()
    });
    let mut raw = chat(&server);
    let overhead = x("").len();
    let sizes = [125, 126, 127, 128, 65535, 65536, 65537];
    let pads: Vec<String> = sizes.iter().map(|n| "p".repeat(n - overhead)).collect();
    for (size, pad) in sizes.iter().zip(&pads) {
        assert_eq!(x(pad).len(), *size);
    }
    raw.send(&pads.iter().flat_map(|p| x_frame(p)).collect::<Vec<u8>>());
    for (size, pad) in sizes.iter().zip(&pads) {
        assert_eq!(echo(&mut raw), json!(pad), "a {size}-byte payload");
    }
}

/// Pings of 0 and 125 bytes get pongs with the same bytes, each of ten
/// pings in one write gets its own pong in order, and unsolicited pongs
/// are ignored (Autobahn 2).
#[test]
fn pings_get_pongs_with_their_payload_and_pongs_are_ignored() {
    let server = TestServer::default();
    let mut raw = chat(&server);
    let binary: Vec<u8> = (0..125u8).map(|i| i.wrapping_mul(151)).collect();
    raw.send(&[frame(true, 0x9, b""), frame(true, 0x9, &binary)].concat());
    assert_eq!(raw.frame(), Some((0xA, Vec::new())), "an empty ping");
    assert_eq!(raw.frame(), Some((0xA, binary)), "a 125-byte ping");
    let pings: Vec<u8> = (0..10u8).flat_map(|i| frame(true, 0x9, &[i])).collect();
    raw.send(&pings);
    for i in 0..10u8 {
        assert_eq!(raw.frame(), Some((0xA, vec![i])), "ping {i} of ten");
    }
    let pongs = [frame(true, 0xA, b""), frame(true, 0xA, b"unasked")];
    raw.send(&[pongs.concat(), x_frame("after pongs")].concat());
    let next = raw
        .frame()
        .map(|(op, p)| (op, String::from_utf8_lossy(&p).into_owned()));
    let (opcode, text) = next.expect("an answer");
    assert_eq!(opcode, 0x1, "nothing but the answer: {text}");
    assert!(text.contains(r#""payload":"after pongs""#), "{text}");
}

/// Pings between the fragments of a message are answered at once; the
/// message is answered once, when whole (Autobahn 5.6-5.8).
#[test]
fn pings_between_fragments_are_answered_at_once_and_the_message_when_whole() {
    let server = TestServer::default();
    let mut raw = chat(&server);
    let text = x("in three parts");
    let (a, rest) = text.split_at(10);
    let (b, c) = rest.split_at(10);
    raw.send(&[frame(false, 0x1, a), frame(true, 0x9, b"1")].concat());
    assert_eq!(raw.frame(), Some((0xA, b"1".to_vec())));
    raw.send(&frame(true, 0x9, b"2"));
    assert_eq!(raw.frame(), Some((0xA, b"2".to_vec())), "no answer yet");
    let rest = [
        frame(false, 0x0, b),
        frame(true, 0x9, b"3"),
        frame(true, 0x0, c),
    ];
    raw.send(&rest.concat());
    assert_eq!(raw.frame(), Some((0xA, b"3".to_vec())));
    assert_eq!(echo(&mut raw), "in three parts");
    raw.send(&frame(true, 0x9, b"4"));
    assert_eq!(raw.frame(), Some((0xA, b"4".to_vec())), "answered once");
}

/// Valid UTF-8 at the code point boundaries, in one frame and in one-byte
/// fragments (every multi-byte sequence split), after empty fragments, is
/// answered unchanged (Autobahn 5.3, 6.2-6.4, 6.5-6.23).
#[test]
fn valid_utf8_in_one_frame_or_one_byte_fragments_is_answered_unchanged() {
    let server = TestServer::default();
    let mut raw = chat(&server);
    let text = "κόσμε \u{80}\u{7ff}\u{800}\u{ffff}\u{fffd}\u{10000}\u{10ffff} 𝄞€";
    let message = x(text);
    raw.send(&x_frame(text));
    assert_eq!(echo(&mut raw), text, "in one frame");
    let mut parts: Vec<&[u8]> = vec![b""];
    parts.extend(message.chunks(1));
    parts.push(b"");
    raw.send(&fragmented(&parts));
    assert_eq!(echo(&mut raw), text, "in one-byte fragments");
}

/// A message of exactly `--max-message-size` bytes is answered, in one
/// frame and in fragments (Autobahn 9.1, 9.3, at the limit).
#[test]
fn a_message_of_exactly_the_maximum_size_is_answered() {
    const MAX: usize = 1 << 20;
    let server = TestServer::start(Config {
        max_message_size: MAX,
        ..Config::default()
    });
    let mut raw = chat(&server);
    let pad = "m".repeat(MAX - x("").len());
    let message = x(&pad);
    assert_eq!(message.len(), MAX);
    raw.send(&frame(true, 0x1, &message));
    assert_eq!(echo(&mut raw), json!(pad), "in one frame");
    let parts: Vec<&[u8]> = message.chunks(4000).collect();
    raw.send(&fragmented(&parts));
    assert_eq!(echo(&mut raw), json!(pad), "in 4000-byte fragments");
}

/// A client's close with a valid code is echoed, and the server then ends
/// the TCP connection promptly (Autobahn 7.7); so is a close with no
/// payload (answered 1000 or empty) or the longest reason (7.3).
#[test]
fn valid_close_codes_are_echoed_and_the_tcp_connection_ends_promptly() {
    let server = TestServer::default();
    let codes = [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ];
    let longest = "r".repeat(123);
    // (case, close frame, the codes its reply may carry; 1005: none).
    let mut cases: Vec<(String, Vec<u8>, Vec<u16>)> = codes
        .iter()
        .map(|&c| (format!("close code {c}"), close_frame(c, b"bye"), vec![c]))
        .collect();
    let empty = frame(true, 0x8, b"");
    cases.push(("a close with no payload".into(), empty, vec![1005, 1000]));
    let reason = longest.as_bytes();
    cases.push((
        "the longest reason".into(),
        close_frame(1000, reason),
        vec![1000],
    ));
    for (case, close, accepted) in cases {
        let mut raw = chat(&server);
        let sent = Instant::now();
        raw.send(&close);
        let reply = loop {
            match raw.frame() {
                Some((0x8, payload)) => break payload,
                Some((0x9, _)) => {}
                other => panic!("{case}: expected the close reply, got {other:?}"),
            }
        };
        let echoed = code_of(&reply);
        assert!(accepted.contains(&echoed), "{case}: answered {echoed}");
        ends_cleanly(&mut raw, &case, sent, PROMPTLY);
    }
}

/// Messages before the client's close are answered, before the close
/// reply (no data frame may follow a close frame, RFC 6455 5.5.1); what
/// follows the client's close is not; the close is echoed and TCP ends
/// promptly (Autobahn 7.1).
#[test]
fn messages_before_the_clients_close_are_answered_before_the_reply() {
    let server = TestServer::default();
    let mut raw = chat(&server);
    let close = close_frame(1000, b"bye");
    raw.send(&[x_frame("before"), close, x_frame("after")].concat());
    let sent = Instant::now();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let frame = raw.frame();
        let frame = frame.unwrap_or_else(|| panic!("the connection ended after {seen:?}"));
        seen.push(describe(&frame));
    }
    assert_eq!(
        seen,
        [r#"answer "before""#, r#"close 1000 "bye""#],
        "the answer first, then the close reply"
    );
    ends_cleanly(&mut raw, "after the client's close", sent, PROMPTLY);
}

/// After the server's close for an error, a client that never answers (nor
/// closes) is dropped within the close grace (each connection's deadline
/// is a timer of its own) plus a margin, both for a protocol error (1002) and an engine close
/// (1003, a binary frame on a text protocol).
#[test]
fn a_client_that_never_answers_the_close_is_dropped_within_the_grace() {
    let server = TestServer::default();
    let limit = Duration::from_millis(CLOSE_GRACE_MS + 500);
    let cases = [
        ("a reserved opcode", frame(true, 0x3, b""), 1002),
        ("a binary frame", frame(true, 0x2, &[1, 2, 3]), 1003),
    ];
    for (case, bad, code) in cases {
        let mut raw = chat(&server);
        raw.send(&bad);
        let closed = Instant::now();
        assert_eq!(raw.close_code(), code, "{case}");
        ends_cleanly(&mut raw, case, closed, limit);
        // The server's socket goes too (the metrics request is the one left).
        eventually_within(limit.saturating_sub(closed.elapsed()), case, || {
            metric(&server, "roomd_sockets_open") == 1
        });
    }
}
