//! One client socket and where it is in its life: reading the HTTP
//! request, writing an HTTP answer, or a WebSocket (open, closing, failed,
//! finished). In the manner of rustls' connections: the reactor tells it
//! the socket is readable or writable, and asks it what it wants next
//! ([`Connection::interest`], [`Connection::deadline`]).
//!
//! A TLS connection has a rustls record layer between the socket and the
//! rest ([`crate::server::tls`]); nothing above it knows. It is rustls'
//! unbuffered connection, with the bytes on either side of it held here
//! only while there are any: an idle TLS connection holds no buffer
//! (rustls' buffered `ServerConnection` keeps a 4 KiB read buffer for a
//! connection's whole life).
//!
//! Nothing here touches the engine: the reactor does. What a live upgrade
//! hands over of a connection is in [`handover`].

use crate::engine::ConnId;
use crate::protocol::close::CloseReason;
use crate::protocol::websocket::Codec;
use crate::server::budget::Held;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;

mod handover;

/// Plaintext encrypted per step of a flush: ciphertext of at most this
/// much waits in the TLS layer at a time, so the outbound queue (which the
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
    tls: Option<Box<Tls>>,
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
            Some(config) => Some(Box::new(Tls::new(
                UnbufferedServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?,
            ))),
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
            Some(tls) => tls.read(&mut self.stream, buf, want),
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
                && !tls.send(&mut self.stream)?
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
                Some(tls) => match tls.encrypt(&unsent[..unsent.len().min(TLS_PLAINTEXT_STEP)]) {
                    Ok(Some(n)) => Ok(n),
                    // Before the handshake's end: the plaintext waits.
                    Ok(None) => break,
                    Err(e) => Err(e),
                },
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
                State::WebSocket { codec, .. } => {
                    flushed.spare = codec.mark_sent(n);
                    // All written, and no TLS records wait: no second look.
                    if flushed.spare.is_some() && self.tls.is_none() {
                        flushed.drained = true;
                        break;
                    }
                }
            }
        }
        if !flushed.drained {
            flushed.queued = self.queued();
            return Ok(flushed);
        }
        if let Some(tls) = &mut self.tls {
            tls.release();
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
            tls.drive(Act::CloseNotify);
            if let Err(e) = tls.send(&mut self.stream) {
                log::debug!("{}: close_notify not sent: {e}", self.peer);
            }
            tls.release();
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

/// What [`Tls::drive`] is to do once rustls lets application data flow.
#[derive(Clone, Copy, Debug)]
enum Act<'a> {
    /// Nothing: only process what was received.
    Nothing,
    /// Encrypt this plaintext.
    Encrypt(&'a [u8]),
    /// Queue a `close_notify` alert.
    CloseNotify,
}

/// Where [`Tls::drive`] stopped.
#[derive(Debug)]
enum Driven {
    /// rustls needs more records from the peer (during the handshake), or
    /// has processed all it has (after it).
    NeedData,
    /// This much of [`Act::Encrypt`]'s plaintext was encrypted.
    Encrypted(usize),
    /// The peer sent `close_notify`.
    PeerClosed,
    /// The peer broke TLS (the alert, if any, is queued).
    Failed(rustls::Error),
}

/// Bound on the states [`Tls::drive`] steps through in one call (each
/// consumes a record or emits one; a connection that gets no further is
/// treated as broken rather than spun on).
const TLS_MAX_STEPS: usize = 1024;

/// The TLS record layer of one connection: rustls' unbuffered server
/// connection, the ciphertext received and not yet processed (a partial
/// record), the plaintext decrypted and not yet read, and the records to
/// send. Each buffer holds memory only while it holds bytes.
struct Tls {
    conn: UnbufferedServerConnection,
    /// Ciphertext received and not yet processed.
    incoming: Vec<u8>,
    /// Plaintext decrypted; `plain_read` of it has been read.
    plain: Vec<u8>,
    plain_read: usize,
    /// Records to send; `out_sent` of them are sent.
    outgoing: Vec<u8>,
    out_sent: usize,
    /// The peer's `close_notify` arrived.
    peer_closed: bool,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("handshaking", &self.conn.is_handshaking())
            .field("incoming", &self.incoming.len())
            .field("plain", &(self.plain.len() - self.plain_read))
            .field("outgoing", &(self.outgoing.len() - self.out_sent))
            .field("peer_closed", &self.peer_closed)
            .finish()
    }
}

impl Tls {
    fn new(conn: UnbufferedServerConnection) -> Tls {
        Tls {
            conn,
            incoming: Vec::new(),
            plain: Vec::new(),
            plain_read: 0,
            outgoing: Vec::new(),
            out_sent: 0,
            peer_closed: false,
        }
    }

    /// Whether records wait to be sent.
    fn wants_write(&self) -> bool {
        self.out_sent < self.outgoing.len()
    }

    /// Frees the buffers that hold nothing.
    fn release(&mut self) {
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        if self.plain_read == self.plain.len() {
            self.plain = Vec::new();
            self.plain_read = 0;
        }
        if !self.wants_write() {
            self.outgoing = Vec::new();
            self.out_sent = 0;
        }
    }

    /// Plaintext into `buf[..want]`: what was decrypted before first, else
    /// records read from the socket (into all of `buf`) and processed.
    fn read(&mut self, stream: &mut TcpStream, buf: &mut [u8], want: usize) -> ReadOutcome {
        loop {
            if self.plain_read < self.plain.len() {
                let rest = &self.plain[self.plain_read..];
                let n = rest.len().min(want);
                buf[..n].copy_from_slice(&rest[..n]);
                self.plain_read += n;
                self.release();
                return ReadOutcome::Data { n, filled: true };
            }
            if self.peer_closed {
                return ReadOutcome::Gone;
            }
            let in_handshake = self.conn.is_handshaking();
            match self.drive(Act::Nothing) {
                Driven::NeedData | Driven::Encrypted(_) => {}
                Driven::PeerClosed => continue,
                Driven::Failed(e) => {
                    log::debug!("TLS error: {e}");
                    // The alert rustls queued, if the socket takes it.
                    let _ = self.send(stream);
                    return ReadOutcome::BadTls { in_handshake };
                }
            }
            if self.plain_read < self.plain.len() {
                continue;
            }
            self.release();
            match stream.read(buf) {
                Ok(0) => return ReadOutcome::Gone,
                Ok(n) => self.incoming.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("read error {e}");
                    return ReadOutcome::Gone;
                }
            }
        }
    }

    /// Encrypts what it can of `plain` (`Ok(None)` before the handshake's
    /// end: nothing yet).
    fn encrypt(&mut self, plain: &[u8]) -> io::Result<Option<usize>> {
        match self.drive(Act::Encrypt(plain)) {
            Driven::Encrypted(n) => Ok(Some(n)),
            Driven::NeedData | Driven::PeerClosed => Ok(None),
            Driven::Failed(e) => Err(io::Error::other(e)),
        }
    }

    /// Writes the queued records. `Ok(true)` when none is left.
    fn send(&mut self, stream: &mut TcpStream) -> io::Result<bool> {
        while self.wants_write() {
            match stream.write(&self.outgoing[self.out_sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.outgoing.clear();
        self.out_sent = 0;
        Ok(true)
    }

    /// Steps rustls through the records received (plaintext goes to
    /// `plain`, records to send to `outgoing`) until it needs more, then
    /// does `act` if application data may flow.
    fn drive(&mut self, act: Act<'_>) -> Driven {
        for _ in 0..TLS_MAX_STEPS {
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut self.incoming);
            let stop = match state {
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    encode(&mut self.outgoing, &mut data).err()
                }
                // The records are in `outgoing` already.
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    None
                }
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    let mut stop = None;
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(record) => self.plain.extend_from_slice(record.payload),
                            Err(e) => {
                                stop = Some(Driven::Failed(e));
                                break;
                            }
                        }
                    }
                    stop
                }
                Ok(ConnectionState::BlockedHandshake) => Some(Driven::NeedData),
                // Reported once; what is queued may still be sent.
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    matches!(act, Act::Nothing).then_some(Driven::PeerClosed)
                }
                Ok(ConnectionState::Closed) => {
                    self.peer_closed = true;
                    Some(Driven::PeerClosed)
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => Some(match act {
                    Act::Nothing => Driven::NeedData,
                    Act::Encrypt(plain) => {
                        // Room for the records' headers, tags and padding.
                        let room = plain.len() + 64 * (plain.len() / (16 * 1024) + 1);
                        let written =
                            append(&mut self.outgoing, room, |out| traffic.encrypt(plain, out));
                        match written {
                            Ok(()) => Driven::Encrypted(plain.len()),
                            Err(e) => Driven::Failed(rustls::Error::General(e.to_string())),
                        }
                    }
                    Act::CloseNotify => {
                        let written = append(&mut self.outgoing, 64, |out| {
                            traffic.queue_close_notify(out)
                        });
                        match written {
                            Ok(()) => Driven::NeedData,
                            Err(e) => Driven::Failed(rustls::Error::General(e.to_string())),
                        }
                    }
                }),
                // Early data is not accepted (`max_early_data_size` is 0).
                Ok(_) => Some(Driven::Failed(rustls::Error::General(
                    "unexpected TLS state".into(),
                ))),
                Err(e) => {
                    self.incoming.drain(..discard);
                    self.take_alert();
                    return Driven::Failed(e);
                }
            };
            self.incoming.drain(..discard);
            if let Some(stop) = stop {
                return stop;
            }
        }
        Driven::Failed(rustls::Error::General(
            "TLS connection makes no progress".into(),
        ))
    }

    /// After an error: the alert rustls queued, into `outgoing`. rustls
    /// hands out queued records before it looks at the input again, and
    /// must not be asked again (it would process the input once more).
    fn take_alert(&mut self) {
        let UnbufferedStatus { discard, state } = self.conn.process_tls_records(&mut self.incoming);
        if let Ok(ConnectionState::EncodeTlsData(mut data)) = state {
            let _ = encode(&mut self.outgoing, &mut data);
        }
        self.incoming.drain(..discard);
    }
}

/// Appends a record rustls hands out to `out`; `Some` if it could not.
fn encode(
    out: &mut Vec<u8>,
    data: &mut rustls::unbuffered::EncodeTlsData<'_, rustls::server::ServerConnectionData>,
) -> Result<(), Driven> {
    append(out, 64, |buf| data.encode(buf))
        .map_err(|e| Driven::Failed(rustls::Error::General(e.to_string())))
}

/// The room rustls needs, when what it was given was too small.
trait NeedsRoom {
    /// The bytes needed, if too few were given.
    fn required(&self) -> Option<usize>;
}

impl NeedsRoom for EncodeError {
    fn required(&self) -> Option<usize> {
        match self {
            EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Some(*required_size)
            }
            _ => None,
        }
    }
}

impl NeedsRoom for EncryptError {
    fn required(&self) -> Option<usize> {
        match self {
            EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Some(*required_size)
            }
            _ => None,
        }
    }
}

/// Appends to `out` what `write` puts in the space it is given: `room`
/// bytes first, then as much as rustls says it needs.
fn append<E: NeedsRoom>(
    out: &mut Vec<u8>,
    room: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
) -> Result<(), E> {
    let start = out.len();
    let mut room = room;
    loop {
        out.resize(start + room, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(e) => match e.required() {
                Some(required) if required > room => room = required,
                _ => {
                    out.truncate(start);
                    return Err(e);
                }
            },
        }
    }
}
