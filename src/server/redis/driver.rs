//! [`RedisClient`]: the [`Machine`] on two mio sockets. Sockets are
//! registered readable and writable once (edge-triggered); each event
//! reads until `WouldBlock`, and everything the machine queued is written
//! after every call. A socket the machine gave up on is closed here.

use super::machine::{Machine, Which};
use super::{Event, RedisConfig, Script};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};

/// Bytes read per `read` call.
const READ_CHUNK: usize = 16 * 1024;

/// The Redis client on the reactor's poll.
#[derive(Debug)]
pub struct RedisClient {
    machine: Machine,
    addrs: Vec<SocketAddr>,
    attempts: usize,
    tokens: [Token; 2],
    sockets: [Option<TcpStream>; 2],
    scratch: Vec<u8>,
}

impl RedisClient {
    /// A client that connects on the first [`RedisClient::handle_timeout`]
    /// (or at once with [`RedisClient::start`]); `tokens` are its sockets'
    /// (commands, subscriber). The URL's host is resolved here, once: an
    /// unknown host is an error.
    pub fn new(config: RedisConfig, tokens: [Token; 2], now: u64) -> io::Result<RedisClient> {
        let url = &config.url;
        let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port).to_socket_addrs()?.collect();
        if addrs.is_empty() {
            let e = format!("redis host {} has no address", url.host);
            return Err(io::Error::new(io::ErrorKind::InvalidInput, e));
        }
        Ok(RedisClient {
            machine: Machine::new(config, now),
            addrs,
            attempts: 0,
            tokens,
            sockets: [None, None],
            scratch: vec![0; READ_CHUNK],
        })
    }

    /// Opens the connections due at `now`.
    pub fn start(&mut self, registry: &Registry, now: u64) {
        self.sync(registry, now);
    }

    /// Whether `token` is one of the client's.
    pub fn owns(&self, token: Token) -> bool {
        self.tokens.contains(&token)
    }

    /// Whether both connections are ready.
    pub fn is_up(&self) -> bool {
        self.machine.is_up()
    }

    /// Commands waiting to be sent or answered.
    pub fn pending(&self) -> usize {
        self.machine.pending()
    }

    /// A readiness event for one of the client's tokens.
    pub fn handle_event(&mut self, registry: &Registry, event: &mio::event::Event, now: u64) {
        let Some(i) = self.tokens.iter().position(|t| *t == event.token()) else {
            return;
        };
        let which = Which::BOTH[i];
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read(which, now);
        }
        self.sync(registry, now);
    }

    /// Fires what is due at `now` (reconnections, probes, dead links).
    pub fn handle_timeout(&mut self, registry: &Registry, now: u64) {
        self.machine.handle_timeout(now);
        self.sync(registry, now);
    }

    /// When [`RedisClient::handle_timeout`] should be called next.
    pub fn next_deadline(&self) -> Option<u64> {
        self.machine.next_deadline()
    }

    /// Sends `args` (command name first); see [`Machine::submit`].
    pub fn submit(&mut self, id: u64, args: Vec<Vec<u8>>, now: u64) {
        self.machine.submit(id, args, now);
        self.flush(Which::Commands, now);
    }

    /// Runs a script; see [`Machine::submit_script`].
    pub fn submit_script(
        &mut self,
        id: u64,
        script: &Script,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
        now: u64,
    ) {
        self.machine.submit_script(id, script, keys, args, now);
        self.flush(Which::Commands, now);
    }

    /// Subscribes to a channel or pattern; see [`Machine::subscribe`].
    pub fn subscribe(&mut self, channel: Vec<u8>, pattern: bool, now: u64) {
        self.machine.subscribe(channel, pattern, now);
        self.flush(Which::Subscriber, now);
    }

    /// Ends a subscription; see [`Machine::unsubscribe`].
    pub fn unsubscribe(&mut self, channel: &[u8], pattern: bool, now: u64) {
        self.machine.unsubscribe(channel, pattern, now);
        self.flush(Which::Subscriber, now);
    }

    /// The next event, if any (drain after every call above).
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.machine.poll_event()
    }

    /// Reads until `WouldBlock`, feeding the machine.
    fn read(&mut self, which: Which, now: u64) {
        let i = which as usize;
        loop {
            let Some(socket) = &mut self.sockets[i] else {
                return;
            };
            match socket.read(&mut self.scratch) {
                Ok(0) => return self.machine.lost(which, "closed by redis", now),
                Ok(n) => {
                    self.machine.received(which, &self.scratch[..n], now);
                    if !self.machine.has_socket(which) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.machine.lost(which, &e.to_string(), now),
            }
        }
    }

    /// Writes what the machine queued for `which`, as far as the socket
    /// takes it.
    fn flush(&mut self, which: Which, now: u64) {
        let i = which as usize;
        let Some(socket) = &mut self.sockets[i] else {
            return;
        };
        let out = self.machine.out(which);
        let mut written = 0;
        let mut failed = None;
        while written < out.len() {
            match socket.write(&out[written..]) {
                Ok(0) => {
                    failed = Some("write returned 0".to_string());
                    break;
                }
                Ok(n) => written += n,
                // Still connecting, or the socket is full: the writable
                // event brings us back.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected
                    ) =>
                {
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        out.drain(..written);
        if let Some(why) = failed {
            self.machine.lost(which, &why, now);
        }
    }

    /// Closes the sockets the machine gave up on, opens those it wants,
    /// and writes what it queued.
    fn sync(&mut self, registry: &Registry, now: u64) {
        for which in Which::BOTH {
            let i = which as usize;
            if !self.machine.has_socket(which)
                && let Some(mut socket) = self.sockets[i].take()
            {
                let _ = registry.deregister(&mut socket);
            }
            if self.machine.wants_socket(which, now) {
                let addr = self.addrs[self.attempts % self.addrs.len()];
                self.attempts += 1;
                match self.connect(addr, self.tokens[i], registry) {
                    Ok(socket) => {
                        self.sockets[i] = Some(socket);
                        self.machine.opened(which, now);
                    }
                    Err(e) => {
                        // Counted as an attempt: the machine backs off.
                        self.machine.opened(which, now);
                        self.machine.lost(which, &e.to_string(), now);
                    }
                }
            }
            self.flush(which, now);
            if !self.machine.has_socket(which)
                && let Some(mut socket) = self.sockets[i].take()
            {
                let _ = registry.deregister(&mut socket);
            }
        }
    }

    fn connect(
        &self,
        addr: SocketAddr,
        token: Token,
        registry: &Registry,
    ) -> io::Result<TcpStream> {
        let mut socket = TcpStream::connect(addr)?;
        socket.set_nodelay(true)?;
        registry.register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(socket)
    }
}
