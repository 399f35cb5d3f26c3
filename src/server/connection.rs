//! One client connection: its socket, its outbound bytes, and its phase
//! (reading the HTTP request, answered, or a WebSocket).
//!
//! Nothing here touches the engine or the poll registry: the reactor does.

use crate::engine::ConnId;
use crate::protocol::close::CloseReason;
use crate::protocol::frame::FrameBoundaries;
use mio::net::TcpStream;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Message, Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error, Utf8Bytes};

/// tungstenite's read buffer per connection. tungstenite allocates it
/// eagerly (`BytesMut::with_capacity`), so it is most of an idle
/// connection's cost; it also bounds how many bytes are copied per internal
/// read call (input comes from the reactor's shared scratch buffer, not from
/// the socket, so this costs copies, never system calls).
pub const WS_READ_BUFFER: usize = 512;

/// The WebSocket settings for a connection: small read buffer, frames go
/// straight to the connection's outbound bytes, and messages are limited.
pub fn ws_config(max_message_size: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
}

/// Where a connection is in its life.
#[derive(Debug)]
pub enum Phase {
    /// Reading the request head; dropped at `deadline_ms` (slow-loris).
    Request {
        /// The bytes received so far.
        buf: Vec<u8>,
        /// When to give up.
        deadline_ms: u64,
    },
    /// An HTTP answer is queued; the socket closes once it is written.
    Answered {
        /// When to give up on a peer that does not read it.
        deadline_ms: u64,
    },
    /// A WebSocket connection.
    WebSocket(Box<WsState>),
}

/// The WebSocket side of a connection.
#[derive(Debug)]
pub struct WsState {
    /// tungstenite's protocol state (frames, control replies, limits).
    pub ctx: WebSocketContext,
    /// The engine's id for this connection.
    pub id: ConnId,
    /// The engine has been told [`crate::engine::Input::Closed`].
    pub engine_told: bool,
    /// Closing: the socket is dropped at this time if the peer has not
    /// finished the close handshake by then.
    pub closing_deadline_ms: Option<u64>,
    /// A WebSocket-level error happened: incoming bytes are discarded.
    pub failed: bool,
    /// Where the client's frames end, to know when `ctx` holds no bytes.
    frames: FrameBoundaries,
    /// `--max-message-size`, to rebuild `ctx`.
    max_message_size: usize,
}

/// Something a WebSocket peer sent, for the reactor to pass to the engine.
#[derive(Debug, PartialEq, Eq)]
pub enum WsEvent {
    /// A text message.
    Text(String),
    /// A binary message of this length.
    Binary(usize),
    /// A pong, or a ping from the client (both show it is alive).
    Alive,
}

/// What reading a chunk led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// The close handshake is complete: drop the socket once flushed.
    Finished,
    /// A WebSocket-level error: a close frame for this reason was queued.
    Failed(CloseReason),
}

/// The stream tungstenite sees: reads come from a chunk the reactor already
/// read from the socket, writes go to the connection's outbound bytes.
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

impl WsState {
    /// A WebSocket whose first bytes (after the request head) are `early`.
    pub fn new(id: ConnId, early: &[u8], max_message_size: usize) -> Self {
        let config = Some(ws_config(max_message_size));
        let ctx = if early.is_empty() {
            WebSocketContext::new(Role::Server, config)
        } else {
            WebSocketContext::from_partially_read(early.to_vec(), Role::Server, config)
        };
        let mut frames = FrameBoundaries::default();
        frames.advance(early);
        WsState {
            ctx,
            id,
            engine_told: false,
            closing_deadline_ms: None,
            failed: false,
            frames,
            max_message_size,
        }
    }

    /// A context with this connection's settings and nothing pending.
    fn fresh_context(&self) -> WebSocketContext {
        WebSocketContext::new(Role::Server, Some(ws_config(self.max_message_size)))
    }

    /// After a large message, tungstenite keeps a read buffer as large as
    /// that message for good; once every byte received belongs to complete
    /// messages, a fresh context (same settings, nothing pending) frees it.
    fn shrink_after_large_message(&mut self) {
        if self.is_open()
            && self.ctx.can_write()
            && self.frames.at_message_boundary()
            && self.frames.take_largest_payload() > WS_READ_BUFFER as u64
        {
            self.ctx = self.fresh_context();
        }
    }

    /// Whether data frames may still be sent.
    pub fn is_open(&self) -> bool {
        self.closing_deadline_ms.is_none() && !self.failed
    }

    /// Decodes `input` (possibly empty, to process earlier bytes); each
    /// message is pushed to `events`, control replies go to `out`.
    pub fn receive(&mut self, input: &[u8], out: &mut Vec<u8>, events: &mut Vec<WsEvent>) -> Flow {
        if self.failed {
            return Flow::Continue;
        }
        self.frames.advance(input);
        let mut pipe = Pipe { input, out };
        loop {
            match self.ctx.read(&mut pipe) {
                Ok(Message::Text(text)) => events.push(WsEvent::Text(text.as_str().to_owned())),
                Ok(Message::Binary(data)) => events.push(WsEvent::Binary(data.len())),
                Ok(Message::Ping(_) | Message::Pong(_)) => events.push(WsEvent::Alive),
                Ok(Message::Close(_) | Message::Frame(_)) => {}
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.shrink_after_large_message();
                    return Flow::Continue;
                }
                Err(Error::ConnectionClosed | Error::AlreadyClosed) => return Flow::Finished,
                Err(e) => {
                    let reason = match e {
                        Error::Capacity(_) => CloseReason::MessageTooBig,
                        Error::Utf8(_) => CloseReason::InvalidUtf8,
                        _ => CloseReason::ProtocolError,
                    };
                    log::debug!("{:?}: websocket error {e}, closing {reason:?}", self.id);
                    self.fail(pipe.out, reason);
                    return Flow::Failed(reason);
                }
            }
        }
    }

    /// Bytes held of the message in progress (see
    /// [`FrameBoundaries::pending`]).
    pub fn pending_bytes(&self) -> usize {
        usize::try_from(self.frames.pending()).unwrap_or(usize::MAX)
    }

    /// Gives up on the connection: queues a close frame for `reason` into
    /// `out`, discards what it sends from now on, and frees the message it
    /// was sending.
    pub fn fail(&mut self, out: &mut Vec<u8>, reason: CloseReason) {
        self.failed = true;
        self.queue_close(out, reason);
        self.ctx = self.fresh_context();
        self.frames = FrameBoundaries::default();
    }

    /// Queues a close frame (if none was sent yet) into `out`.
    pub fn queue_close(&mut self, out: &mut Vec<u8>, reason: CloseReason) {
        let frame = CloseFrame {
            code: reason.code().into(),
            reason: Utf8Bytes::from_static(reason.reason()),
        };
        let mut pipe = Pipe { input: &[], out };
        if let Err(e) = self.ctx.close(&mut pipe, Some(frame)) {
            log::debug!("{:?}: close not sent: {e}", self.id);
        }
    }
}

/// A client connection.
#[derive(Debug)]
pub struct Connection {
    /// The socket.
    pub stream: TcpStream,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Bytes to send; `out[sent..]` is still queued.
    pub out: Vec<u8>,
    /// How much of `out` is written.
    pub sent: usize,
    /// Where the connection is in its life.
    pub phase: Phase,
    /// Registered for write readiness.
    pub write_interest: bool,
    /// In the reactor's list of connections to flush this turn.
    pub dirty: bool,
    /// Listed for the tick's sweep: it may hold a deadline.
    pub watched: bool,
    /// Its queued bytes as last counted in the reactor's total.
    pub accounted: usize,
    /// Its incoming message in progress, in bytes, as last counted in the
    /// reactor's total.
    pub inbound: usize,
}

impl Connection {
    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Writes as much as the socket takes. `Ok(true)` when nothing is left.
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
            Ok(true)
        } else {
            if self.sent > self.out.len() / 2 {
                self.out.drain(..self.sent);
                self.sent = 0;
            }
            Ok(false)
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

    #[test]
    fn decodes_split_messages_and_answers_pings() {
        let mut ws = WsState::new(ConnId(1), &masked_frame(1, b"hel")[..4], 1024);
        let mut out = Vec::new();
        let mut events = Vec::new();
        let mut rest = masked_frame(1, b"hel")[4..].to_vec();
        rest.extend(masked_frame(9, b"p"));
        rest.extend(masked_frame(2, &[0; 3]));
        assert_eq!(ws.receive(&rest, &mut out, &mut events), Flow::Continue);
        assert_eq!(
            events,
            vec![
                WsEvent::Text("hel".into()),
                WsEvent::Alive,
                WsEvent::Binary(3)
            ]
        );
        assert_eq!(
            out,
            vec![0x8a, 1, b'p'],
            "pong written to the outbound bytes"
        );
    }

    #[test]
    fn errors_queue_close_codes() {
        for (frame, reason, code) in [
            (
                masked_frame(1, &[b'a'; 300]),
                CloseReason::MessageTooBig,
                1009,
            ),
            (
                masked_frame(1, &[0xff, 0xfe]),
                CloseReason::InvalidUtf8,
                1007,
            ),
            // An unmasked client frame.
            (vec![0x81, 0x01, b'a'], CloseReason::ProtocolError, 1002),
        ] {
            let mut ws = WsState::new(ConnId(1), &[], 256);
            let mut out = Vec::new();
            assert_eq!(
                ws.receive(&frame, &mut out, &mut Vec::new()),
                Flow::Failed(reason)
            );
            assert_eq!(out[0], 0x88);
            assert_eq!(u16::from_be_bytes([out[2], out[3]]), code);
            assert_eq!(&out[4..], reason.reason().as_bytes());
            assert!(!ws.is_open());
        }
    }

    #[test]
    fn large_messages_then_more_messages_still_decode() {
        let mut ws = WsState::new(ConnId(1), &[], 1 << 20);
        let mut events = Vec::new();
        let big = "b".repeat(5000);
        let mut bytes = masked_frame(1, big.as_bytes());
        bytes.extend(masked_frame(1, b"after"));
        // Split mid-frame: no reset may happen before the second frame is whole.
        assert_eq!(
            ws.receive(&bytes[..3000], &mut Vec::new(), &mut events),
            Flow::Continue
        );
        assert_eq!(
            ws.receive(&bytes[3000..5010], &mut Vec::new(), &mut events),
            Flow::Continue
        );
        assert_eq!(
            ws.receive(&bytes[5010..], &mut Vec::new(), &mut events),
            Flow::Continue
        );
        assert_eq!(
            ws.receive(&masked_frame(1, b"again"), &mut Vec::new(), &mut events),
            Flow::Continue
        );
        assert_eq!(
            events,
            vec![
                WsEvent::Text(big),
                WsEvent::Text("after".into()),
                WsEvent::Text("again".into())
            ]
        );
    }

    #[test]
    fn close_handshake_finishes() {
        let mut ws = WsState::new(ConnId(1), &[], 256);
        let mut out = Vec::new();
        let flow = ws.receive(
            &masked_frame(8, &1000u16.to_be_bytes()),
            &mut out,
            &mut Vec::new(),
        );
        assert_eq!(flow, Flow::Finished);
        assert_eq!(&out[..4], &[0x88, 2, 0x03, 0xe8], "close echoed");
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
                        expected.push(WsEvent::Alive);
                    }
                }
                expected.push(if binary {
                    WsEvent::Binary(len)
                } else {
                    WsEvent::Text(String::from_utf8(payload).unwrap_or_default())
                });
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut ws = WsState::new(ConnId(1), &[], 1 << 20);
            let (mut out, mut events, mut from) = (Vec::new(), Vec::new(), 0);
            for cut in cuts.into_iter().chain([bytes.len()]) {
                proptest::prop_assert_eq!(ws.receive(&bytes[from..cut], &mut out, &mut events), Flow::Continue);
                from = cut;
            }
            proptest::prop_assert_eq!(events, expected);
            proptest::prop_assert_eq!(ws.pending_bytes(), 0);
        }
    }
}
