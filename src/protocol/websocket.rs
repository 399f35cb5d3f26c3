//! The server side of one WebSocket, as a pure codec that owns both
//! directions: bytes from the client go in and come out as messages, one
//! at a time; everything sent to the client (the server's frames,
//! tungstenite's pongs and close replies) is queued in one outbound queue
//! that the caller writes to the socket.
//!
//! Decoding one message at a time is what keeps the order right: the
//! caller acts on a message (and queues its answers) before the next one
//! is decoded, so a pong, a close reply or a protocol error's close frame
//! comes after the answers to everything the client sent before it, and
//! nothing after a failure is decoded at all.

use crate::protocol::close::CloseReason;
use crate::protocol::frame::{FrameBoundaries, OPCODE_PING, write_frame};
use std::io::{self, Read, Write};
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Message, Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error, Utf8Bytes};

/// tungstenite's read buffer per connection. tungstenite allocates it
/// eagerly, so it is most of an idle connection's cost; it also bounds how
/// many bytes are copied per internal read (input comes from the caller's
/// buffer, not from a socket, so this costs copies, never system calls).
pub const READ_BUFFER: usize = 512;

/// What the client sent, as the caller passes it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// A text message.
    Text(String),
    /// A binary message of this length.
    Binary(usize),
    /// A pong, or a ping (already answered): both show the peer is alive.
    Alive,
}

/// The result of one [`Codec::decode`] step.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A message; call again for the next one.
    Message(Received),
    /// Every byte given so far is decoded; wait for more.
    NeedMore,
    /// The close handshake is complete: the socket may go once the
    /// outbound queue is written.
    Finished,
    /// The client broke the protocol: a close frame for this reason is
    /// queued and nothing it sends is decoded any more.
    Failed(CloseReason),
}

/// Where the codec is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// The server sent its close frame and waits for the client's.
    Closing,
    /// The client broke the protocol; input is discarded.
    Failed,
}

/// The settings of every connection's tungstenite context: a small read
/// buffer, frames written straight to the outbound queue, messages and
/// frames limited to `max_message_size`.
fn config(max_message_size: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
}

/// The server side of one WebSocket. See the module docs.
#[derive(Debug)]
pub struct Codec {
    /// tungstenite's protocol state (frames, control replies, limits).
    ctx: WebSocketContext,
    /// Where the client's frames end, to know when `ctx` holds no bytes.
    frames: FrameBoundaries,
    /// Messages (pings, pongs and closes among them) `ctx` has returned;
    /// equal to `frames.messages()` when it holds none undelivered.
    returned: u64,
    /// The last message returned was a ping or a close, whose answer
    /// `ctx` writes on its next read.
    answer_owed: bool,
    /// A copy of the bytes received since the last message boundary, which
    /// `ctx` holds and cannot give back: what a live upgrade hands over of
    /// an incomplete message. Empty whenever every byte received belongs to
    /// complete messages (the common case copies nothing).
    partial: Vec<u8>,
    state: State,
    /// Bytes to send; `out[sent..]` is still queued.
    out: Vec<u8>,
    sent: usize,
    max_message_size: usize,
}

/// The stream tungstenite sees: reads come from the caller's bytes, writes
/// go to the outbound queue.
struct Pipe<'a> {
    input: &'a [u8],
    out: &'a mut Vec<u8>,
}

impl Read for Pipe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.input.len().min(buf.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Pipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Codec {
    /// A WebSocket whose client already sent `early` (the bytes after its
    /// request head) and whose outbound queue starts with `out` (the
    /// `101` answer).
    pub fn new(early: &[u8], max_message_size: usize, out: Vec<u8>) -> Self {
        let ctx = if early.is_empty() {
            WebSocketContext::new(Role::Server, Some(config(max_message_size)))
        } else {
            WebSocketContext::from_partially_read(
                early.to_vec(),
                Role::Server,
                Some(config(max_message_size)),
            )
        };
        let mut codec = Codec {
            ctx,
            frames: FrameBoundaries::default(),
            partial: Vec::new(),
            returned: 0,
            answer_owed: false,
            state: State::Open,
            out,
            sent: 0,
            max_message_size,
        };
        codec.follow(early);
        codec
    }

    /// A codec in `state` that goes on from another's: `partial` is what
    /// that one held of an incomplete message ([`Self::partial_input`]),
    /// `out` what it had not sent ([`Self::unsent`]). A closing one has
    /// sent its close frame already (the client's close is not answered
    /// again); a failed one discards what it receives.
    pub fn resume(partial: &[u8], max_message_size: usize, out: Vec<u8>, state: State) -> Self {
        match state {
            State::Open => Codec::new(partial, max_message_size, out),
            State::Closing => {
                let mut codec = Codec::new(partial, max_message_size, out);
                let mut sent_before = Vec::new();
                let mut pipe = Pipe {
                    input: &[],
                    out: &mut sent_before,
                };
                // The context learns that its close frame is out.
                if let Err(e) = codec.ctx.close(&mut pipe, None) {
                    log::debug!("resumed close: {e}");
                }
                codec.state = State::Closing;
                codec
            }
            State::Failed => {
                let mut codec = Codec::new(&[], max_message_size, out);
                codec.state = State::Failed;
                codec
            }
        }
    }

    /// Where it is in its life (for [`Self::resume`]).
    pub fn state(&self) -> State {
        self.state
    }

    /// Follows `taken`, bytes just given to `ctx`, keeping [`Self::partial`]
    /// the bytes of the message in progress.
    fn follow(&mut self, taken: &[u8]) {
        let last = self.frames.advance(taken);
        if self.frames.at_message_boundary() {
            self.partial.clear();
            return;
        }
        if let Some(last) = last {
            self.partial.clear();
            self.partial.extend_from_slice(&taken[last..]);
        } else {
            self.partial.extend_from_slice(taken);
        }
    }

    /// The bytes received of the message in progress (with any control
    /// frames between its fragments), as [`Codec::new`] takes them back:
    /// empty at a message boundary.
    pub fn partial_input(&self) -> &[u8] {
        &self.partial
    }

    /// Decodes the next message from what it holds plus `input`. Returns
    /// how many bytes of `input` it took (the rest is for the next call)
    /// and what came of it. Pongs and close replies are queued as the
    /// frames that ask for them are decoded.
    pub fn decode(&mut self, input: &[u8]) -> (usize, Decoded) {
        if self.state == State::Failed {
            return (input.len(), Decoded::NeedMore);
        }
        // Nothing new and nothing held: `ctx` would only find the input
        // empty (after every message, so this is half of all reads).
        if input.is_empty() && self.holds_nothing() {
            self.shrink_after_large_message();
            return (0, Decoded::NeedMore);
        }
        let mut pipe = Pipe {
            input,
            out: &mut self.out,
        };
        let result = self.ctx.read(&mut pipe);
        let taken = input.len() - pipe.input.len();
        self.follow(&input[..taken]);
        // Each read first writes what the previous one owed.
        self.answer_owed = matches!(result, Ok(Message::Ping(_) | Message::Close(_)));
        self.returned += u64::from(result.is_ok());
        let decoded = match result {
            Ok(Message::Text(text)) => Decoded::Message(Received::Text(text.as_str().to_owned())),
            Ok(Message::Binary(data)) => Decoded::Message(Received::Binary(data.len())),
            Ok(Message::Ping(_) | Message::Pong(_)) => Decoded::Message(Received::Alive),
            // The client's close: tungstenite queued the reply; the next
            // read reports the handshake finished.
            Ok(Message::Close(_) | Message::Frame(_)) => return (taken, self.decode_more()),
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.shrink_after_large_message();
                Decoded::NeedMore
            }
            Err(Error::ConnectionClosed | Error::AlreadyClosed) => Decoded::Finished,
            Err(e) => {
                let close = match e {
                    Error::Capacity(_) => CloseReason::MessageTooBig,
                    Error::Utf8(_) => CloseReason::InvalidUtf8,
                    _ => CloseReason::ProtocolError,
                };
                log::debug!("websocket error {e}, closing {}", close.code());
                self.fail(close);
                Decoded::Failed(close)
            }
        };
        (taken, decoded)
    }

    /// Whether `ctx` holds nothing to act on: every byte it was given
    /// belongs to messages it has returned (whole messages, as many
    /// message ends as messages returned), it owes no answer, and it is
    /// open. A fragment of a message in progress is something to act on:
    /// `ctx` checks its text (invalid UTF-8 fails at once), so a read
    /// follows it however the bytes were split.
    fn holds_nothing(&self) -> bool {
        self.state == State::Open
            && !self.answer_owed
            && self.frames.at_message_boundary()
            && self.frames.messages() == self.returned
    }

    /// After the client's close frame: the next step of an empty input.
    fn decode_more(&mut self) -> Decoded {
        self.decode(&[]).1
    }

    /// After a large message, tungstenite keeps a read buffer as large as
    /// that message for good; once every byte received belongs to complete
    /// messages, a fresh context (same settings, nothing pending) frees it.
    /// (Checked after every read, so the one test that is almost always
    /// false comes first.)
    #[inline]
    fn shrink_after_large_message(&mut self) {
        if self.frames.largest_payload() > READ_BUFFER as u64
            && self.state == State::Open
            && self.ctx.can_write()
            && self.frames.at_message_boundary()
        {
            self.frames.take_largest_payload();
            self.ctx = self.fresh_context();
            self.partial = Vec::new();
        }
    }

    /// A context with this connection's settings and nothing pending.
    fn fresh_context(&self) -> WebSocketContext {
        WebSocketContext::new(Role::Server, Some(config(self.max_message_size)))
    }

    /// Whether messages may still be sent.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether the client broke the protocol (its input is discarded).
    pub fn failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Queues a text frame already encoded with
    /// [`crate::protocol::frame::write_frame`] (a broadcast is encoded
    /// once for all its recipients). Ignored once closing.
    pub fn send_encoded(&mut self, frame: &[u8]) {
        if self.is_open() {
            self.out.extend_from_slice(frame);
        }
    }

    /// Queues a ping. Ignored once closing.
    pub fn send_ping(&mut self) {
        if self.is_open() {
            write_frame(&mut self.out, OPCODE_PING, &[]);
        }
    }

    /// Starts the close handshake: queues a close frame (if none was sent
    /// yet); nothing more is sent after it.
    pub fn close(&mut self, close: CloseReason) {
        if self.state == State::Open {
            self.state = State::Closing;
        }
        let frame = CloseFrame {
            code: close.code().into(),
            reason: Utf8Bytes::from_static(close.reason()),
        };
        let mut pipe = Pipe {
            input: &[],
            out: &mut self.out,
        };
        if let Err(e) = self.ctx.close(&mut pipe, Some(frame)) {
            log::debug!("close not sent: {e}");
        }
    }

    /// Gives up on the client: queues a close frame with `close`, discards
    /// what it sends from now on, and frees the message it was sending.
    pub fn fail(&mut self, close: CloseReason) {
        self.close(close);
        self.state = State::Failed;
        self.ctx = self.fresh_context();
        self.frames = FrameBoundaries::default();
        self.returned = 0;
        self.answer_owed = false;
        self.partial = Vec::new();
    }

    /// Bytes held of the incoming message in progress (see
    /// [`FrameBoundaries::pending`]).
    pub fn pending_input(&self) -> usize {
        usize::try_from(self.frames.pending()).unwrap_or(usize::MAX)
    }

    /// The bytes queued for the client and not yet written.
    pub fn unsent(&self) -> &[u8] {
        &self.out[self.sent..]
    }

    /// Marks the first `n` bytes of [`Self::unsent`] as written; returns
    /// the emptied buffer once nothing is left (for reuse elsewhere).
    pub fn mark_sent(&mut self, n: usize) -> Option<Vec<u8>> {
        self.sent = (self.sent + n).min(self.out.len());
        if self.sent == self.out.len() {
            self.sent = 0;
            let mut buf = std::mem::take(&mut self.out);
            buf.clear();
            return Some(buf);
        }
        if self.sent > self.out.len() / 2 {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
        None
    }

    /// Whether the outbound queue has no buffer (a spare one can be
    /// given with [`Self::give_buffer`] before queuing).
    pub fn needs_buffer(&self) -> bool {
        self.out.capacity() == 0
    }

    /// Gives an empty buffer to an outbound queue that has none.
    pub fn give_buffer(&mut self, buf: Vec<u8>) {
        if self.out.capacity() == 0 {
            self.out = buf;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        masked_fragment(true, opcode, payload)
    }

    fn masked_fragment(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        if payload.len() < 126 {
            f.push(0x80 | payload.len() as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    /// Decodes all of `input`; returns every step's result up to and
    /// including the first that is not a message.
    fn decode_all(codec: &mut Codec, mut input: &[u8]) -> Vec<Decoded> {
        let mut steps = Vec::new();
        loop {
            let (taken, decoded) = codec.decode(input);
            input = &input[taken..];
            let last = !matches!(decoded, Decoded::Message(_));
            steps.push(decoded);
            if last {
                return steps;
            }
        }
    }

    fn texts(steps: &[Decoded]) -> Vec<Received> {
        steps
            .iter()
            .filter_map(|d| match d {
                Decoded::Message(Received::Text(t)) => Some(Received::Text(t.clone())),
                Decoded::Message(Received::Binary(n)) => Some(Received::Binary(*n)),
                Decoded::Message(Received::Alive) => Some(Received::Alive),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn decodes_split_messages_and_answers_pings() {
        let first = masked_frame(1, b"hel");
        let mut codec = Codec::new(&first[..4], 1024, Vec::new());
        let mut rest = first[4..].to_vec();
        rest.extend(masked_frame(9, b"p"));
        rest.extend(masked_frame(2, &[0; 3]));
        let steps = decode_all(&mut codec, &rest);
        assert_eq!(steps.last(), Some(&Decoded::NeedMore));
        assert_eq!(
            texts(&steps),
            vec![
                Received::Text("hel".into()),
                Received::Alive,
                Received::Binary(3)
            ]
        );
        assert_eq!(codec.unsent(), &[0x8a, 1, b'p'], "pong queued");
    }

    #[test]
    fn a_message_is_given_before_the_next_frame_is_decoded() {
        let mut codec = Codec::new(&[], 1024, Vec::new());
        let mut input = masked_frame(1, b"first");
        input.extend(masked_frame(9, b"p"));
        let (taken, decoded) = codec.decode(&input);
        assert_eq!(decoded, Decoded::Message(Received::Text("first".into())));
        assert!(codec.unsent().is_empty(), "the ping is not answered yet");
        codec.send_encoded(b"answer");
        let steps = decode_all(&mut codec, &input[taken..]);
        assert_eq!(
            steps,
            vec![Decoded::Message(Received::Alive), Decoded::NeedMore]
        );
        assert_eq!(codec.unsent(), b"answer\x8a\x01p", "answer, then pong");
    }

    #[test]
    fn an_empty_read_is_skipped_only_when_nothing_is_held() {
        let mut codec = Codec::new(&[], 1024, Vec::new());
        let mut input = masked_frame(1, b"one");
        input.extend(masked_frame(1, b"two"));
        let (taken, first) = codec.decode(&input);
        assert_eq!(first, Decoded::Message(Received::Text("one".into())));
        assert_eq!(taken, input.len(), "both frames were read in");
        assert!(!codec.holds_nothing(), "the second is held");
        let (_, second) = codec.decode(&[]);
        assert_eq!(second, Decoded::Message(Received::Text("two".into())));
        assert!(codec.holds_nothing());
        assert_eq!(codec.decode(&[]), (0, Decoded::NeedMore));
        codec.decode(&masked_frame(9, b"p"));
        assert!(
            !codec.holds_nothing(),
            "the pong is written on the next read"
        );
        assert_eq!(codec.decode(&[]), (0, Decoded::NeedMore));
        assert_eq!(codec.unsent(), &[0x8a, 1, b'p']);
        assert!(codec.holds_nothing());
    }

    #[test]
    fn errors_queue_close_codes_after_earlier_answers() {
        for (frame, code) in [
            (masked_frame(1, &[b'a'; 300]), 1009),
            (masked_frame(1, &[0xff, 0xfe]), 1007),
            (vec![0x81, 0x01, b'a'], 1002), // unmasked client frame
        ] {
            let mut codec = Codec::new(&[], 256, Vec::new());
            let mut input = masked_frame(1, b"ok");
            input.extend(frame);
            input.extend(masked_frame(1, b"never"));
            let (taken, first) = codec.decode(&input);
            assert_eq!(first, Decoded::Message(Received::Text("ok".into())));
            codec.send_encoded(b"answer");
            let steps = decode_all(&mut codec, &input[taken..]);
            assert!(
                matches!(steps.last(), Some(Decoded::Failed(c)) if c.code() == code),
                "{steps:?}"
            );
            assert!(texts(&steps).is_empty(), "nothing after the failure");
            let out = codec.unsent();
            assert_eq!(&out[..6], b"answer");
            assert_eq!(out[6], 0x88);
            assert_eq!(u16::from_be_bytes([out[8], out[9]]), code);
            assert!(!codec.is_open());
            assert_eq!(codec.decode(b"more").1, Decoded::NeedMore);
        }
    }

    #[test]
    fn large_messages_then_more_messages_still_decode() {
        let mut codec = Codec::new(&[], 1 << 20, Vec::new());
        let big = "b".repeat(5000);
        let mut bytes = masked_frame(1, big.as_bytes());
        bytes.extend(masked_frame(1, b"after"));
        let mut steps = Vec::new();
        // Split mid-frame: no reset may happen before the second frame is whole.
        for part in [&bytes[..3000], &bytes[3000..5010], &bytes[5010..]] {
            steps.extend(decode_all(&mut codec, part));
        }
        steps.extend(decode_all(&mut codec, &masked_frame(1, b"again")));
        assert_eq!(
            texts(&steps),
            vec![
                Received::Text(big),
                Received::Text("after".into()),
                Received::Text("again".into())
            ]
        );
    }

    #[test]
    fn close_handshake_finishes_after_the_reply() {
        let mut codec = Codec::new(&[], 256, Vec::new());
        let steps = decode_all(&mut codec, &masked_frame(8, &1000u16.to_be_bytes()));
        assert_eq!(steps, vec![Decoded::Finished]);
        assert_eq!(&codec.unsent()[..4], &[0x88, 2, 0x03, 0xe8], "close echoed");
    }

    #[test]
    fn outbound_queue_drains_and_gives_its_buffer_back() {
        let mut codec = Codec::new(&[], 256, b"HTTP/1.1 101\r\n\r\n".to_vec());
        codec.send_ping();
        let n = codec.unsent().len();
        assert_eq!(codec.mark_sent(3), None);
        assert_eq!(codec.unsent().len(), n - 3);
        let buf = codec.mark_sent(n - 3);
        assert!(buf.is_some_and(|b| b.is_empty()));
        assert!(codec.needs_buffer());
        codec.close(CloseReason::ShuttingDown);
        codec.send_ping();
        assert_eq!(codec.unsent()[0], 0x88, "nothing after the close frame");
        assert_eq!(
            codec.unsent().len(),
            4 + CloseReason::ShuttingDown.reason().len()
        );
    }

    #[test]
    fn a_message_split_by_a_handover_is_delivered_whole() {
        let mut codec = Codec::new(&[], 1 << 16, Vec::new());
        let mut bytes = masked_frame(1, b"before");
        let big = "x".repeat(2000);
        bytes.extend(masked_frame(1, big.as_bytes()));
        let cut = masked_frame(1, b"before").len() + 700;
        let steps = decode_all(&mut codec, &bytes[..cut]);
        assert_eq!(texts(&steps), vec![Received::Text("before".into())]);
        assert_eq!(codec.partial_input(), &bytes[cut - 700..cut]);
        assert_eq!(codec.pending_input(), 700);
        codec.send_encoded(b"queued");
        let mut next = Codec::resume(
            codec.partial_input(),
            1 << 16,
            codec.unsent().to_vec(),
            codec.state(),
        );
        assert_eq!(next.unsent(), b"queued");
        let steps = decode_all(&mut next, &bytes[cut..]);
        assert_eq!(texts(&steps), vec![Received::Text(big)]);
        assert!(next.partial_input().is_empty());
        assert_eq!(next.pending_input(), 0);
    }

    #[test]
    fn whole_messages_leave_nothing_partial() {
        let mut codec = Codec::new(&[], 1024, Vec::new());
        let mut bytes = masked_frame(1, b"one");
        bytes.extend(masked_frame(9, b""));
        bytes.extend(masked_frame(1, b"two"));
        decode_all(&mut codec, &bytes);
        assert!(codec.partial_input().is_empty());
        assert_eq!(codec.partial.capacity(), 0, "nothing copied");
    }

    #[test]
    fn a_resumed_closing_codec_does_not_answer_the_close_again() {
        let mut codec = Codec::new(&[], 1024, Vec::new());
        codec.close(CloseReason::ShuttingDown);
        let sent = codec.unsent().len();
        let mut next = Codec::resume(&[], 1024, Vec::new(), codec.state());
        assert!(!next.is_open());
        let steps = decode_all(&mut next, &masked_frame(8, &1000u16.to_be_bytes()));
        assert_eq!(steps, vec![Decoded::Finished]);
        assert!(next.unsent().is_empty(), "no second close frame");
        assert!(sent > 0);
        let mut failed = Codec::resume(b"junk", 1024, b"x".to_vec(), State::Failed);
        assert!(failed.failed());
        assert_eq!(failed.decode(b"more").1, Decoded::NeedMore);
        assert_eq!(failed.unsent(), b"x");
    }

    proptest::proptest! {
        /// Messages of any size (many past the 512-byte read buffer, which
        /// makes the context be rebuilt between messages), fragmented or
        /// not, with pings between fragments, split anywhere: every message
        /// comes out whole and in order, and nothing is left pending.
        #[test]
        fn any_messages_split_anywhere_decode_in_order(
            messages in proptest::collection::vec(
                (0usize..1500, 1usize..4, proptest::prelude::any::<bool>(), proptest::prelude::any::<bool>()),
                1..12,
            ),
            cuts in proptest::collection::vec(0usize..20_000, 0..12),
        ) {
            let mut bytes = Vec::new();
            let mut expected = Vec::new();
            for (i, &(len, parts, binary, ping)) in messages.iter().enumerate() {
                let payload: Vec<u8> = (0..len).map(|j| b'a' + ((i + j) % 26) as u8).collect();
                let step = len.div_ceil(parts).max(1);
                let chunks: Vec<&[u8]> = if len == 0 { vec![&[][..]] } else { payload.chunks(step).collect() };
                for (c, chunk) in chunks.iter().enumerate() {
                    let opcode = if c > 0 { 0x0 } else if binary { 0x2 } else { 0x1 };
                    bytes.extend(masked_fragment(c + 1 == chunks.len(), opcode, chunk));
                    if ping && c + 1 < chunks.len() {
                        bytes.extend(masked_frame(0x9, b"p"));
                        expected.push(Received::Alive);
                    }
                }
                expected.push(if binary {
                    Received::Binary(len)
                } else {
                    Received::Text(String::from_utf8(payload).unwrap_or_default())
                });
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut codec = Codec::new(&[], 1 << 20, Vec::new());
            let mut handed = Codec::new(&[], 1 << 20, Vec::new());
            let (mut steps, mut handed_steps, mut from) = (Vec::new(), Vec::new(), 0);
            for cut in cuts.into_iter().chain([bytes.len()]) {
                steps.extend(decode_all(&mut codec, &bytes[from..cut]));
                handed_steps.extend(decode_all(&mut handed, &bytes[from..cut]));
                proptest::prop_assert_eq!(handed.partial_input().len(), handed.pending_input());
                // A live upgrade at every cut: a new codec from what the
                // old one held.
                handed = Codec::resume(handed.partial_input(), 1 << 20, Vec::new(), handed.state());
                from = cut;
            }
            proptest::prop_assert!(steps.iter().all(|s| matches!(s, Decoded::Message(_) | Decoded::NeedMore)));
            proptest::prop_assert_eq!(texts(&steps), expected.clone());
            proptest::prop_assert_eq!(codec.pending_input(), 0);
            // A ping between fragments may be decoded again after a cut
            // (it is part of the incomplete message's bytes): messages
            // alone are compared.
            let messages = |r: Vec<Received>| -> Vec<Received> {
                r.into_iter().filter(|r| *r != Received::Alive).collect()
            };
            proptest::prop_assert_eq!(messages(texts(&handed_steps)), messages(expected));
        }
    }
}
