//! One client socket and where it is in its life: reading the HTTP
//! request, writing an HTTP answer, or a WebSocket (open, closing, failed,
//! finished). In the manner of rustls' connections: the reactor tells it
//! the socket is readable or writable, and asks it what it wants next
//! ([`Connection::interest`], [`Connection::deadline`]).
//!
//! Nothing here touches the engine: the reactor does.

use crate::engine::ConnId;
use crate::protocol::close::CloseReason;
use crate::protocol::websocket::Codec;
use crate::server::budget::Held;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

/// What one flush achieved.
#[derive(Debug, Default)]
pub(crate) struct Flushed {
    /// Nothing is left queued.
    pub drained: bool,
    /// The emptied outbound buffer, for reuse.
    pub spare: Option<Vec<u8>>,
    /// The socket has nothing more to do: drop it.
    pub done: bool,
}

/// A client connection.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
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
    /// `deadline_ms`, registered readable under `token`.
    pub fn accept(
        mut stream: TcpStream,
        peer: SocketAddr,
        serial: u64,
        buf: Vec<u8>,
        deadline_ms: u64,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Connection> {
        registry.register(&mut stream, token, Interest::READABLE)?;
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            stream,
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
    /// need, while reading one).
    pub fn read(&mut self, buf: &mut [u8], max_request: usize) -> ReadOutcome {
        let want = match &self.state {
            State::Request { buf: head, .. } => (max_request + 1).saturating_sub(head.len()),
            _ => buf.len(),
        }
        .min(buf.len());
        loop {
            return match self.stream.read(&mut buf[..want]) {
                // A peer that half-closes after its request still gets
                // the answer: the flush closes the socket.
                Ok(0) if matches!(self.state, State::Answered { .. }) => ReadOutcome::WouldBlock,
                Ok(0) => ReadOutcome::Gone,
                Ok(n) => ReadOutcome::Data {
                    n,
                    filled: n == want,
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("{}: read error {e}", self.peer);
                    ReadOutcome::Gone
                }
            };
        }
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
            let unsent = match &self.state {
                State::Request { .. } => &[][..],
                State::Answered { out, sent, .. } => &out[*sent..],
                State::WebSocket { codec, .. } => codec.unsent(),
            };
            if unsent.is_empty() {
                flushed.drained = true;
                break;
            }
            let n = match self.stream.write(unsent) {
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
        if flushed.drained {
            match &mut self.state {
                State::Answered { out, sent, .. } => {
                    *sent = 0;
                    flushed.spare = Some(std::mem::take(out));
                    flushed.done = true;
                }
                State::WebSocket { life, .. } => match life {
                    Life::Finished { .. } => flushed.done = true,
                    // The close frame is out: the peer gets FIN at once;
                    // what it still sends is read and discarded, so that
                    // no reset destroys the close frame.
                    Life::Failed { .. } => {
                        let _ = self.stream.shutdown(Shutdown::Write);
                    }
                    _ => {}
                },
                State::Request { .. } => {}
            }
            if flushed.done {
                let _ = self.stream.shutdown(Shutdown::Write);
            }
        }
        Ok(flushed)
    }

    /// What to be woken for: readable always, writable while bytes are
    /// queued.
    pub fn interest(&self) -> Interest {
        if self.queued() > 0 {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Re-registers under `token` if [`Self::interest`] changed.
    pub fn update_registration(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = self.interest();
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
