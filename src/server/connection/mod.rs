//! One client socket and where it is in its life: reading the HTTP
//! request, writing an HTTP answer, or a WebSocket (open, closing, failed,
//! finished). In the manner of rustls' connections: the reactor tells it
//! the socket is readable or writable, and asks it what it wants next
//! ([`Connection::interest`], [`Connection::deadline`]).
//!
//! A TLS connection has a rustls record layer between the socket and the
//! rest ([`crate::server::tls`]); nothing above it knows.
//!
//! Nothing here touches the engine: the reactor does. What a live upgrade
//! hands over of a connection is in [`handover`].

use crate::engine::ConnId;
use crate::protocol::close::CloseReason;
use crate::protocol::websocket::Codec;
use crate::server::budget::Held;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::{ServerConfig, ServerConnection};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;

mod handover;

/// Plaintext handed to rustls per step of a flush: ciphertext of at most
/// this much waits in rustls at a time, so the outbound queue (which the
/// budgets count) holds the rest.
const TLS_PLAINTEXT_STEP: usize = 64 * 1024;

/// Where a connection is in its life.
#[derive(Debug)]
enum State {
    /// Reading the request head; dropped at `deadline_ms` (slow-loris).
    Request { buf: Vec<u8>, deadline_ms: u64 },
    /// An HTTP answer is queued; the socket closes once it is written or
    /// at `deadline_ms`.
    Answered {
        out: Vec<u8>,
        sent: usize,
        deadline_ms: u64,
    },
    /// A WebSocket.
    WebSocket {
        id: ConnId,
        codec: Box<Codec>,
        life: Life,
    },
}

/// A WebSocket's life. The engine knows the connection only while `Open`:
/// every way out of it reports [`crate::engine::Input::Closed`] unless the
/// engine itself asked for the close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Life {
    /// Messages flow.
    Open,
    /// The server sent its close frame; waiting for the client's until
    /// `deadline_ms`.
    Closing { deadline_ms: u64 },
    /// The client broke the protocol; once the close frame is out the
    /// socket is half-closed, and it goes when the client closes too or
    /// at `deadline_ms`.
    Failed { deadline_ms: u64 },
    /// The close handshake is complete: the socket goes once written, or
    /// at `deadline_ms`.
    Finished { deadline_ms: u64 },
}

/// What one read from the socket gave.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    /// This many bytes; `filled` if as many as were asked for (so the
    /// socket may hold more).
    Data { n: usize, filled: bool },
    /// Nothing more for now.
    WouldBlock,
    /// The peer closed or reset the socket (or it failed).
    Gone,
    /// The peer broke TLS (`in_handshake`: before the handshake ended).
    BadTls { in_handshake: bool },
}

/// What one flush achieved.
#[derive(Debug, Default)]
pub(crate) struct Flushed {
    /// Nothing is left queued (neither plaintext nor TLS records).
    pub drained: bool,
    /// Plaintext bytes still queued.
    pub queued: usize,
    /// The emptied outbound buffer, for reuse.
    pub spare: Option<Vec<u8>>,
    /// The socket has nothing more to do: drop it.
    pub done: bool,
}

/// A client connection.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    /// The TLS record layer, on a TLS listener's connection.
    tls: Option<Box<ServerConnection>>,
    peer: SocketAddr,
    /// Distinguishes this connection from others that had the same key.
    serial: u64,
    state: State,
    /// The interest it is registered with.
    registered: Interest,
    /// In the reactor's list of connections to flush this turn.
    dirty: bool,
    /// What it holds of the reactor's budgets.
    pub held: Held,
}

impl Connection {
    /// A new connection reading its request head into `buf` until
    /// `deadline_ms` (a TLS one if `tls` is given: its handshake must end
    /// by then too), registered readable under `token`.
    #[allow(clippy::too_many_arguments)]
    pub fn accept(
        mut stream: TcpStream,
        peer: SocketAddr,
        serial: u64,
        tls: Option<&Arc<ServerConfig>>,
        buf: Vec<u8>,
        deadline_ms: u64,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Connection> {
        let tls = match tls {
            Some(config) => Some(Box::new(
                ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?,
            )),
            None => None,
        };
        registry.register(&mut stream, token, Interest::READABLE)?;
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            stream,
            tls,
            peer,
            serial,
            state: State::Request { buf, deadline_ms },
            registered: Interest::READABLE,
            dirty: false,
            held: Held::default(),
        })
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// This connection's serial (see [`crate::server::reactor`]'s deadlines).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The time at which it is given up on, if any.
    pub fn deadline(&self) -> Option<u64> {
        match &self.state {
            State::Request { deadline_ms, .. } | State::Answered { deadline_ms, .. } => {
                Some(*deadline_ms)
            }
            State::WebSocket { life, .. } => match life {
                Life::Open => None,
                Life::Closing { deadline_ms }
                | Life::Failed { deadline_ms }
                | Life::Finished { deadline_ms } => Some(*deadline_ms),
            },
        }
    }

    /// Whether it is still reading its request head.
    pub fn is_request(&self) -> bool {
        matches!(self.state, State::Request { .. })
    }

    /// The request bytes received so far, if it is still reading its
    /// request head.
    pub fn request_buf(&mut self) -> Option<&mut Vec<u8>> {
        match &mut self.state {
            State::Request { buf, .. } => Some(buf),
            _ => None,
        }
    }

    /// The WebSocket's engine id, codec and life, if it is one.
    pub fn websocket(&mut self) -> Option<(ConnId, &mut Codec, Life)> {
        match &mut self.state {
            State::WebSocket { id, codec, life } => Some((*id, codec, *life)),
            _ => None,
        }
    }

    /// The engine id of an open WebSocket.
    pub fn open_id(&self) -> Option<ConnId> {
        match &self.state {
            State::WebSocket {
                id,
                life: Life::Open,
                ..
            } => Some(*id),
            _ => None,
        }
    }

    /// The engine id, if it is a WebSocket in any life.
    pub fn ws_id(&self) -> Option<ConnId> {
        match &self.state {
            State::WebSocket { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// Queues an HTTP answer; the socket closes once it is written or at
    /// `deadline_ms`. Returns the request buffer, for reuse.
    pub fn answer(&mut self, response: Vec<u8>, deadline_ms: u64) -> Option<Vec<u8>> {
        let old = std::mem::replace(
            &mut self.state,
            State::Answered {
                out: response,
                sent: 0,
                deadline_ms,
            },
        );
        match old {
            State::Request { buf, .. } => Some(buf),
            _ => None,
        }
    }

    /// Becomes an open WebSocket with engine id `id`.
    pub fn upgrade(&mut self, id: ConnId, codec: Codec) {
        self.state = State::WebSocket {
            id,
            codec: Box::new(codec),
            life: Life::Open,
        };
    }

    /// Moves an open or closing WebSocket to `life` (see [`Life`]).
    /// Returns the engine id if the engine still had it open.
    pub fn leave_open(&mut self, next: Life) -> Option<ConnId> {
        match &mut self.state {
            State::WebSocket { id, life, .. } => {
                let was_open = *life == Life::Open;
                *life = next;
                was_open.then_some(*id)
            }
            _ => None,
        }
    }

    /// Sends a close frame on an open WebSocket and waits for the
    /// client's until `deadline_ms`. Returns the engine id if the engine
    /// still had it open.
    pub fn close(&mut self, close: CloseReason, deadline_ms: u64) -> Option<ConnId> {
        let State::WebSocket { codec, life, .. } = &mut self.state else {
            return None;
        };
        if *life != Life::Open {
            return None;
        }
        codec.close(close);
        self.leave_open(Life::Closing { deadline_ms })
    }

    /// Reads once into `buf` (at most what the request head may still
    /// need, while reading one): plaintext, through TLS if it has it.
    pub fn read(&mut self, buf: &mut [u8], max_request: usize) -> ReadOutcome {
        let want = match &self.state {
            State::Request { buf: head, .. } => (max_request + 1).saturating_sub(head.len()),
            _ => buf.len(),
        }
        .min(buf.len());
        let outcome = match &mut self.tls {
            None => read_plain(&mut self.stream, &mut buf[..want]),
            Some(tls) => read_tls(tls, &mut self.stream, &mut buf[..want]),
        };
        match outcome {
            // A peer that half-closes after its request still gets the
            // answer: the flush closes the socket.
            ReadOutcome::Gone if matches!(self.state, State::Answered { .. }) => {
                ReadOutcome::WouldBlock
            }
            ReadOutcome::Gone => {
                log::debug!("{}: gone", self.peer);
                ReadOutcome::Gone
            }
            other => other,
        }
    }

    /// Whether a flush has something to do (plaintext queued, or TLS
    /// records to send, a handshake's among them).
    pub fn wants_write(&self) -> bool {
        self.queued() > 0 || self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        match &self.state {
            State::Request { .. } => 0,
            State::Answered { out, sent, .. } => out.len() - sent,
            State::WebSocket { codec, .. } => codec.unsent().len(),
        }
    }

    /// Marks it for this turn's flush; `true` if it was not yet marked.
    pub fn mark_dirty(&mut self) -> bool {
        !std::mem::replace(&mut self.dirty, true)
    }

    /// Writes as much as the socket takes, and says what is left to do.
    pub fn flush(&mut self) -> io::Result<Flushed> {
        self.dirty = false;
        let mut flushed = Flushed::default();
        loop {
            if let Some(tls) = &mut self.tls
                && !write_tls(tls, &mut self.stream)?
            {
                break;
            }
            let unsent = match &self.state {
                State::Request { .. } => &[][..],
                State::Answered { out, sent, .. } => &out[*sent..],
                State::WebSocket { codec, .. } => codec.unsent(),
            };
            if unsent.is_empty() {
                flushed.drained = true;
                break;
            }
            let written = match &mut self.tls {
                None => self.stream.write(unsent),
                Some(tls) => tls
                    .writer()
                    .write(&unsent[..unsent.len().min(TLS_PLAINTEXT_STEP)]),
            };
            let n = match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match &mut self.state {
                State::Request { .. } => {}
                State::Answered { sent, .. } => *sent += n,
                State::WebSocket { codec, .. } => flushed.spare = codec.mark_sent(n),
            }
        }
        if !flushed.drained {
            flushed.queued = self.queued();
            return Ok(flushed);
        }
        // Everything is out: an HTTP answer or a finished close handshake
        // ends the socket; a failed WebSocket's close frame is out, so the
        // peer gets FIN at once (what it still sends is read and
        // discarded, so that no reset destroys the close frame).
        let (done, end) = match &mut self.state {
            State::Answered { out, sent, .. } => {
                *sent = 0;
                flushed.spare = Some(std::mem::take(out));
                (true, true)
            }
            State::WebSocket { life, .. } => match life {
                Life::Finished { .. } => (true, true),
                Life::Failed { .. } => (false, true),
                _ => (false, false),
            },
            State::Request { .. } => (false, false),
        };
        flushed.done = done;
        if end {
            self.end_writing();
        }
        Ok(flushed)
    }

    /// Sends TLS's `close_notify` (if TLS) and FIN.
    fn end_writing(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            if let Err(e) = write_tls(tls, &mut self.stream) {
                log::debug!("{}: close_notify not sent: {e}", self.peer);
            }
        }
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Re-registers under `token` for what a flush left: readable always,
    /// writable while anything is queued (`!drained`); a syscall only when
    /// that changed.
    pub fn update_registration(
        &mut self,
        registry: &Registry,
        token: Token,
        drained: bool,
    ) -> io::Result<()> {
        let interest = if drained {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        if interest != self.registered {
            registry.reregister(&mut self.stream, token, interest)?;
            self.registered = interest;
        }
        Ok(())
    }

    /// Removes it from `registry` (before it is dropped).
    pub fn deregister(&mut self, registry: &Registry) {
        if let Err(e) = registry.deregister(&mut self.stream) {
            log::debug!("deregister: {e}");
        }
    }
}

/// One read from a plaintext socket.
fn read_plain(stream: &mut TcpStream, buf: &mut [u8]) -> ReadOutcome {
    loop {
        return match stream.read(buf) {
            Ok(0) => ReadOutcome::Gone,
            Ok(n) => ReadOutcome::Data {
                n,
                filled: n == buf.len(),
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::debug!("read error {e}");
                ReadOutcome::Gone
            }
        };
    }
}

/// Plaintext from a TLS connection: what rustls holds first, else records
/// read from the socket and processed. rustls refuses more records while
/// 16 KiB of plaintext waits, so plaintext is always drained first.
fn read_tls(tls: &mut ServerConnection, stream: &mut TcpStream, buf: &mut [u8]) -> ReadOutcome {
    loop {
        match tls.reader().read(buf) {
            // The peer's close_notify.
            Ok(0) => return ReadOutcome::Gone,
            Ok(n) => return ReadOutcome::Data { n, filled: true },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return ReadOutcome::Gone,
        }
        match tls.read_tls(stream) {
            Ok(0) => return ReadOutcome::Gone,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return ReadOutcome::Gone,
        }
        let in_handshake = tls.is_handshaking();
        if let Err(e) = tls.process_new_packets() {
            log::debug!("TLS error: {e}");
            // The alert rustls queued, if the socket takes it.
            let _ = write_tls(tls, stream);
            return ReadOutcome::BadTls { in_handshake };
        }
    }
}

/// Writes the TLS records rustls has queued. `Ok(true)` when none is left.
fn write_tls(tls: &mut ServerConnection, stream: &mut TcpStream) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
