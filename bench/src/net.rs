//! The load generator's client side: many WebSocket client connections on
//! one mio poll, with its own HTTP upgrade, frames parsed in place from one
//! shared read buffer and one write per connection per loop turn. With a
//! [`TlsClient`] every connection runs through a rustls client (aws-lc-rs,
//! the server's crypto) over the same nonblocking socket: `wss://`.

use crate::frame;
use crate::stats::now_us;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Largest server frame the generator accepts.
const MAX_FRAME: usize = 16 << 20;
/// Size of the shared read buffer.
const SCRATCH: usize = 256 << 10;
/// Fixed key: the server only needs it to be well-formed.
const UPGRADE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// What a scenario does when something happens on a connection.
pub trait Handler {
    /// The upgrade answered `101`: the connection is open.
    fn on_open(&mut self, net: &mut Net, id: usize);
    /// A complete text (or binary) message arrived.
    fn on_text(&mut self, net: &mut Net, id: usize, text: &[u8]);
    /// The connection is gone (refused, reset, closed, or bad upgrade).
    fn on_close(&mut self, net: &mut Net, id: usize, why: &str);
}

/// What every TLS connection of a generator starts from: a rustls client
/// configuration trusting one CA file, and the name the server's
/// certificate must carry.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl TlsClient {
    /// A client trusting the certificates in the PEM file `ca` (a CA, or a
    /// self-signed server certificate), verifying the server as `name` (a
    /// DNS name or an IP address). Resumption is off: every connection is
    /// a full handshake, as a crowd of distinct browsers would make. `kx`
    /// names the key exchange groups to offer (e.g. `["X25519"]`, matched
    /// without regard to case); empty: rustls' defaults (X25519MLKEM768
    /// first, as browsers offer).
    pub fn new(ca: &Path, name: &str, kx: &[&str]) -> Result<TlsClient, String> {
        let mut roots = RootCertStore::empty();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
            .and_then(|certs| certs.collect())
            .map_err(|e| format!("cannot read certificates from {}: {e}", ca.display()))?;
        if certs.is_empty() {
            return Err(format!("no certificate in {}", ca.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        if !kx.is_empty() {
            let named = |g: &&'static dyn rustls::crypto::SupportedKxGroup| {
                let name = format!("{:?}", g.name());
                kx.iter().any(|k| k.eq_ignore_ascii_case(&name))
            };
            provider.kx_groups.retain(named);
            if provider.kx_groups.is_empty() {
                return Err(format!("no key exchange group among {kx:?}"));
            }
        }
        let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.resumption = rustls::client::Resumption::disabled();
        let name = ServerName::try_from(name.to_string())
            .map_err(|e| format!("TLS server name {name:?}: {e}"))?;
        Ok(TlsClient {
            config: Arc::new(config),
            name,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Upgrading,
    Open,
}

struct Conn {
    sock: TcpStream,
    /// The record layer of a `wss://` connection.
    tls: Option<Box<ClientConnection>>,
    state: State,
    /// Bytes read but not yet parsed (the upgrade answer, or a split frame).
    partial: Vec<u8>,
    out: Vec<u8>,
    dirty: bool,
}

/// All client connections of one generator process.
pub struct Net {
    tls: Option<TlsClient>,
    poll: Poll,
    events: Events,
    conns: Vec<Option<Conn>>,
    scratch: Vec<u8>,
    dirty: Vec<usize>,
    mask_state: u32,
    open: usize,
    read_us: u64,
}

/// Connections still open when the generator is done are reset, not
/// closed: a normal close would leave each client port in TIME_WAIT for a
/// minute, and tens of thousands of those make the next run's `bind` (its
/// search for a free source port) many times slower, which showed up as
/// idle runs a few times slower than the one before.
impl Drop for Net {
    fn drop(&mut self) {
        for id in 0..self.conns.len() {
            self.abort(id);
        }
    }
}

impl Net {
    /// A poll for up to `capacity` connections, ids `0..capacity`; with
    /// `tls`, every connection is `wss://`.
    pub fn new(capacity: usize, tls: Option<TlsClient>) -> io::Result<Net> {
        Ok(Net {
            tls,
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            conns: (0..capacity).map(|_| None).collect(),
            scratch: vec![0; SCRATCH],
            dirty: Vec::new(),
            mask_state: 0x9E37_79B9,
            open: 0,
            read_us: 0,
        })
    }

    /// Number of connection slots.
    pub fn capacity(&self) -> usize {
        self.conns.len()
    }

    /// Number of connections currently open (upgraded).
    pub fn open_count(&self) -> usize {
        self.open
    }

    /// When the read that brought the message being handled returned (one
    /// clock read per socket read, not per message).
    pub fn read_time(&self) -> u64 {
        self.read_us
    }

    /// Whether connection `id` exists (connecting, upgrading or open).
    pub fn exists(&self, id: usize) -> bool {
        self.conns[id].is_some()
    }

    /// Starts connecting `id` to `addr` (from source address `src` if given)
    /// and queues the upgrade request for `path`.
    pub fn connect(
        &mut self,
        id: usize,
        addr: SocketAddr,
        src: Option<IpAddr>,
        path: &str,
    ) -> io::Result<()> {
        self.drop_conn(id);
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sock.set_nonblocking(true)?;
        sock.set_tcp_nodelay(true)?;
        if let Some(ip) = src {
            sock.bind(&SocketAddr::new(ip, 0).into())?;
        }
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc_einprogress()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let mut sock = TcpStream::from_std(std::net::TcpStream::from(sock));
        self.poll.registry().register(
            &mut sock,
            Token(id),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {UPGRADE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let tls = match &self.tls {
            None => None,
            Some(t) => Some(Box::new(
                ClientConnection::new(t.config.clone(), t.name.clone())
                    .map_err(io::Error::other)?,
            )),
        };
        self.conns[id] = Some(Conn {
            sock,
            tls,
            state: State::Connecting,
            partial: Vec::new(),
            out: request.into_bytes(),
            dirty: false,
        });
        Ok(())
    }

    /// The negotiated TLS version, cipher suite and key exchange group of
    /// `id`, e.g. `TLSv1_3 TLS13_AES_128_GCM_SHA256 X25519`; `None` for a
    /// plaintext connection or before the handshake.
    pub fn tls_params(&self, id: usize) -> Option<String> {
        let tls = self.conns[id].as_ref()?.tls.as_ref()?;
        let version = tls.protocol_version()?;
        let suite = tls.negotiated_cipher_suite()?;
        let group = tls
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name()))
            .unwrap_or_default();
        Some(format!("{version:?} {:?} {group}", suite.suite()))
    }

    /// Queues a masked text frame on `id` (sent at the end of this turn).
    pub fn send_text(&mut self, id: usize, payload: &[u8]) {
        self.send_frame(id, frame::TEXT, payload);
    }

    fn send_frame(&mut self, id: usize, opcode: u8, payload: &[u8]) {
        // xorshift32: a different well-formed key per frame, no syscalls.
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_state = x;
        if let Some(conn) = self.conns[id].as_mut() {
            frame::encode(&mut conn.out, opcode, payload, Some(x.to_ne_bytes()));
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    /// Drops `id` abruptly: a TCP reset, no close handshake, no callback.
    pub fn abort(&mut self, id: usize) {
        if let Some(conn) = self.conns[id].as_ref() {
            let _ = socket2::SockRef::from(&conn.sock).set_linger(Some(Duration::ZERO));
        }
        self.drop_conn(id);
    }

    fn drop_conn(&mut self, id: usize) {
        if let Some(mut conn) = self.conns[id].take() {
            let _ = self.poll.registry().deregister(&mut conn.sock);
            if conn.state == State::Open {
                self.open -= 1;
            }
        }
    }

    fn fail(&mut self, h: &mut impl Handler, id: usize, why: &str) {
        if self.conns[id].is_some() {
            self.drop_conn(id);
            h.on_close(self, id, why);
        }
    }

    /// One loop turn: waits up to `timeout` for readiness, reads and
    /// dispatches everything available, then flushes queued writes.
    pub fn turn(&mut self, h: &mut impl Handler, timeout: Duration) -> io::Result<()> {
        self.flush();
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let ready: Vec<(usize, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                let err = e.is_error() || e.is_read_closed();
                (e.token().0, e.is_readable() || err, e.is_writable())
            })
            .collect();
        for (id, readable, writable) in ready {
            if id >= self.conns.len() {
                continue;
            }
            if writable {
                self.on_writable(h, id);
            }
            if readable {
                self.on_readable(h, id);
            }
        }
        self.flush();
        Ok(())
    }

    fn on_writable(&mut self, h: &mut impl Handler, id: usize) {
        let Some(conn) = self.conns[id].as_mut() else {
            return;
        };
        if conn.state == State::Connecting {
            match conn.sock.take_error() {
                Ok(Some(e)) | Err(e) => return self.fail(h, id, &format!("connect: {e}")),
                Ok(None) => {}
            }
            match conn.sock.peer_addr() {
                Ok(_) => conn.state = State::Upgrading,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => return self.fail(h, id, &format!("connect: {e}")),
            }
        }
        self.mark_pending(id);
    }

    /// Queues `id` for the next flush if it has anything to write
    /// (plaintext, or TLS records: a handshake message, an alert).
    fn mark_pending(&mut self, id: usize) {
        let Some(conn) = self.conns[id].as_mut() else {
            return;
        };
        let pending = !conn.out.is_empty() || conn.tls.as_ref().is_some_and(|t| t.wants_write());
        if pending && !conn.dirty {
            conn.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Writes every connection with queued output once.
    pub fn flush(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            let Some(conn) = self.conns[id].as_mut() else {
                continue;
            };
            conn.dirty = false;
            if conn.state == State::Connecting {
                continue; // written once the connect completes
            }
            match &mut conn.tls {
                None => write_out(&mut conn.sock, &mut conn.out),
                Some(tls) => write_tls(tls, &mut conn.sock, &mut conn.out),
            }
        }
        dirty.clear();
        self.dirty = dirty;
    }

    fn on_readable(&mut self, h: &mut impl Handler, id: usize) {
        if let Some(conn) = self.conns[id].as_mut()
            && conn.state != State::Open
        {
            let upgraded = read_upgrade(conn);
            // TLS may have a handshake message to send back.
            self.mark_pending(id);
            if let Err(why) = upgraded {
                return self.fail(h, id, &why);
            }
            if self.conns[id]
                .as_ref()
                .is_none_or(|c| c.state != State::Open)
            {
                return;
            }
            self.open += 1;
            h.on_open(self, id);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self.read_frames(h, id, &mut scratch);
        self.scratch = scratch;
        if let Err(why) = result {
            self.fail(h, id, &why);
        } else if self.conns[id].as_ref().is_some_and(|c| c.tls.is_some()) {
            self.mark_pending(id);
        }
    }

    fn read_frames(
        &mut self,
        h: &mut impl Handler,
        id: usize,
        scratch: &mut Vec<u8>,
    ) -> Result<(), String> {
        let Some(conn) = self.conns[id].as_mut() else {
            return Ok(());
        };
        let mut filled = conn.partial.len();
        if filled > scratch.len() {
            scratch.resize(filled, 0);
        }
        scratch[..filled].copy_from_slice(&conn.partial);
        conn.partial.clear();
        let mut eof = false;
        loop {
            // Read as much as is there (the first pass may only parse what
            // the upgrade left behind).
            let Some(conn) = self.conns[id].as_mut() else {
                return Ok(());
            };
            if filled == scratch.len() {
                scratch.resize(scratch.len() * 2, 0);
            }
            let mut would_block = false;
            let filled_by =
                match &mut conn.tls {
                    None => fill(&mut conn.sock, scratch, &mut filled),
                    // A short read of plaintext says nothing about the socket:
                    // read until it would block.
                    Some(tls) => fill(&mut TlsReader(tls, &mut conn.sock), scratch, &mut filled)
                        .map(|f| match f {
                            Fill::Data { .. } => Fill::Data { drained: false },
                            other => other,
                        }),
                };
            match filled_by {
                Ok(Fill::Eof) => eof = true,
                Ok(Fill::Empty) => would_block = true,
                Ok(Fill::Data { drained }) => {
                    would_block = drained;
                    self.read_us = now_us();
                }
                Err(e) => return Err(format!("read: {e}")),
            }
            let mut pos = 0;
            loop {
                let f = match frame::parse(&scratch[pos..filled], MAX_FRAME) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(()) => return Err("oversized frame".into()),
                };
                let (start, end) = (pos + f.start, pos + f.end);
                pos = end;
                if let Some(key) = f.mask {
                    frame::apply_mask(&mut scratch[start..end], key);
                }
                match f.opcode {
                    frame::TEXT | frame::BINARY => h.on_text(self, id, &scratch[start..end]),
                    frame::PING => self.send_frame(id, frame::PONG, &scratch[start..end]),
                    frame::CLOSE => {
                        let code = if end - start >= 2 {
                            u16::from_be_bytes([scratch[start], scratch[start + 1]])
                        } else {
                            1005
                        };
                        return Err(format!("closed by server ({code})"));
                    }
                    _ => {}
                }
                if self.conns[id].is_none() {
                    return Ok(()); // the handler dropped it
                }
            }
            scratch.copy_within(pos..filled, 0);
            filled -= pos;
            if eof {
                return Err("eof".into());
            }
            if would_block {
                break;
            }
        }
        if let Some(conn) = self.conns[id].as_mut() {
            conn.partial.extend_from_slice(&scratch[..filled]);
        }
        Ok(())
    }
}

/// What one read found.
pub enum Fill {
    /// Bytes arrived; `drained` when the read was short, which means the
    /// socket is empty: with edge-triggered readiness, data arriving later
    /// brings a new event, so the read that would only say WouldBlock is
    /// skipped.
    Data {
        /// The socket had no more bytes.
        drained: bool,
    },
    /// The peer closed.
    Eof,
    /// Nothing to read (WouldBlock).
    Empty,
}

/// Writes as much of `out` as the socket takes now and removes it from
/// `out`; the rest waits for writable (errors show up on the next read).
pub fn write_out(sock: &mut impl Write, out: &mut Vec<u8>) {
    let mut pos = 0;
    while pos < out.len() {
        match sock.write(&out[pos..]) {
            Ok(0) => break,
            Ok(n) => pos += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    out.drain(..pos);
}

/// Hands as much of `out` to rustls as it takes and writes the records it
/// has to the socket, until the socket is full or everything is out; the
/// rest waits for writable (errors show up on the next read).
fn write_tls(tls: &mut ClientConnection, sock: &mut TcpStream, out: &mut Vec<u8>) {
    loop {
        let mut taken = 0;
        if !out.is_empty() {
            // Plaintext before the handshake's end waits inside rustls.
            taken = tls.writer().write(out).unwrap_or(0);
            out.drain(..taken);
        }
        while tls.wants_write() {
            match tls.write_tls(sock) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
        if out.is_empty() || taken == 0 {
            return;
        }
    }
}

/// A TLS connection's plaintext as a [`Read`]: what rustls holds first,
/// else records read from the socket and processed; `WouldBlock` once the
/// socket has no more. `Ok(0)` is the server's `close_notify` or EOF.
struct TlsReader<'a>(&'a mut ClientConnection, &'a mut TcpStream);

impl Read for TlsReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let TlsReader(tls, sock) = self;
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match tls.read_tls(sock) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = tls.process_new_packets() {
                // The alert rustls queued, if the socket takes it.
                let _ = tls.write_tls(sock);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }
}

/// Reads once into `buf[*filled..]` (which must not be full), advancing
/// `filled`; retries an interrupted read.
pub fn fill(sock: &mut impl Read, buf: &mut [u8], filled: &mut usize) -> io::Result<Fill> {
    let room = buf.len() - *filled;
    loop {
        return match sock.read(&mut buf[*filled..]) {
            Ok(0) => Ok(Fill::Eof),
            Ok(n) => {
                *filled += n;
                Ok(Fill::Data { drained: n < room })
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Fill::Empty),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}

/// Reads the upgrade answer; leaves any bytes after it in `partial` and
/// switches to `Open` once the `101` is complete.
fn read_upgrade(conn: &mut Conn) -> Result<(), String> {
    let mut buf = [0u8; 4096];
    loop {
        let read = match &mut conn.tls {
            None => conn.sock.read(&mut buf),
            Some(tls) => TlsReader(tls, &mut conn.sock).read(&mut buf),
        };
        match read {
            Ok(0) => return Err("eof during upgrade".into()),
            Ok(n) => conn.partial.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read during upgrade: {e}")),
        }
        if conn.partial.len() > 64 << 10 {
            return Err("upgrade answer too long".into());
        }
    }
    let Some(end) = conn.partial.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(());
    };
    let head = &conn.partial[..end];
    if !(head.starts_with(b"HTTP/1.1 101") || head.starts_with(b"HTTP/1.0 101")) {
        let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
        return Err(format!(
            "upgrade refused: {}",
            String::from_utf8_lossy(line)
        ));
    }
    conn.partial.drain(..end + 4);
    conn.state = State::Open;
    Ok(())
}

fn libc_einprogress() -> i32 {
    115 // EINPROGRESS on Linux
}
