//! The single-threaded mio reactor: a shuttle between sockets and the
//! engine. Per readiness event it reads what arrived, hands each message
//! to the engine, carries out the engine's outputs, flushes each touched
//! connection once and recomputes its interest; it sleeps until the
//! earliest deadline ([`timers`]).
//!
//! Every engine input passes through one method, `Reactor::feed` (the seam
//! for journaling). The other files: `accept` (accepting, the HTTP request,
//! the upgrade), `transfer` (reading, decoding, flushing, shedding).

use crate::engine::{ConnId, ConnMap, Engine, Input, Output};
use crate::journal::JournalWriter;
use crate::protocol::close::CloseReason;
use crate::protocol::frame::{OPCODE_TEXT, write_frame};
use crate::protocol::token::Verifier;
use crate::server::budget::Budget;
use crate::server::buffer_pool::BufferPool;
use crate::server::clock::Clock;
use crate::server::config::Config;
use crate::server::connection::Connection;
use crate::server::metrics::ServerCounters;
use crate::server::tls::TlsIdentity;
use mio::net::TcpListener;
use mio::{Events, Poll, Token, Waker};
use slab::Slab;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use timers::{Timer, Timers};

mod accept;
mod bus;
mod early;
mod lifecycle;
mod resume;
mod timers;
mod transfer;
mod upgrade;

pub(crate) use early::Early;
pub use lifecycle::ShutdownHandle;

/// How long a closing WebSocket waits for the peer's close frame.
pub const CLOSE_GRACE_MS: u64 = 2_000;
/// How long shutdown waits for close handshakes.
pub const SHUTDOWN_GRACE_MS: u64 = 5_000;
/// How long spare buffers are kept after they were last wanted, and how
/// often a paused accept is retried.
const IDLE_RELEASE_MS: u64 = 1_000;
/// Spare outbound buffer capacity kept between loop turns: as much as one
/// turn may produce, so that the buffers of a burst into a large room are
/// reused by the next burst rather than grown again (at 16 MiB a
/// 1,000-member fanout lost a third of its deliveries per CPU second).
const POOL_BYTES: usize = transfer::TURN_OUTPUT_LIMIT;

const WAKER: Token = Token(usize::MAX);
const SIGNALS: Token = Token(usize::MAX - 1);
const LISTENER_BASE: usize = usize::MAX - 1024;

/// A listening socket.
#[derive(Debug)]
struct Listener {
    socket: TcpListener,
    /// Its connections speak TLS.
    tls: bool,
}

/// The reactor and everything it owns.
pub(crate) struct Reactor {
    /// The input journal (`--journal`), if any.
    journal: Option<JournalWriter<std::fs::File>>,
    poll: Poll,
    listeners: Vec<Listener>,
    /// The certificate and key of TLS listeners (reloaded on SIGHUP).
    tls: Option<TlsIdentity>,
    /// Verifies tokens, where signed identities are on.
    verifier: Option<Verifier>,
    /// Per listener: accepting failed for lack of resources, so it is
    /// retried (see `accept`).
    accept_paused: Vec<bool>,
    conns: Slab<Connection>,
    /// Slab key of each WebSocket the engine may send to.
    tokens: ConnMap<usize>,
    engine: Engine,
    clock: Clock,
    config: Config,
    counters: ServerCounters,
    timers: Timers,
    next_id: u64,
    next_serial: u64,
    /// The socket read buffer, shared by every connection.
    scratch: Vec<u8>,
    outputs: Vec<Output>,
    /// The last text sent and its encoded frame: a broadcast is framed once
    /// and copied to every recipient.
    last_text: Option<Arc<str>>,
    last_frame: Vec<u8>,
    /// Connections to flush this turn.
    dirty: Vec<usize>,
    /// Connections whose reading stopped at a budget this turn.
    read_again: Vec<usize>,
    /// WebSockets dropped whose close the engine has yet to hear.
    closed: Vec<ConnId>,
    /// Outbound buffers not in use: a connection holds one only while it
    /// has bytes queued.
    pool: BufferPool,
    outbound: Budget,
    inbound: Budget,
    /// Outbound bytes queued this loop turn.
    turn_output: usize,
    /// A socket was closed this turn (so a paused accept may succeed).
    socket_freed: bool,
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    shutting_down: bool,
    /// The Redis client, with `--redis`.
    redis: Option<bus::Bus>,
    /// The binary a live upgrade starts (`--upgrade-binary`, or the one
    /// this process was started from).
    upgrade_binary: Option<std::path::PathBuf>,
    /// SIGUSR2 came: upgrade at the end of this turn.
    upgrade_requested: bool,
    /// A live upgrade under way.
    upgrade: Option<upgrade::Upgrade>,
    /// In a process started by a live upgrade, until it serves: the socket
    /// to tell the old process so.
    handover_link: Option<std::os::unix::net::UnixStream>,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("connections", &self.conns.len())
            .finish()
    }
}

impl Reactor {
    /// Runs until shut down and every connection is gone (or the shutdown
    /// grace has passed), then flushes the journal.
    pub fn run(&mut self) -> io::Result<()> {
        let result = self.serve();
        if let Some(journal) = &mut self.journal {
            journal.flush();
        }
        result
    }

    fn serve(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            // Connections to flush (as after a hand-over) get a turn at once.
            let timeout = if self.read_again.is_empty() && self.dirty.is_empty() {
                let next = self.timers.next(&self.conns);
                next.map(|at| Duration::from_millis(at.saturating_sub(self.clock.now_ms())))
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            let now = self.clock.now_ms();
            self.turn_output = 0;
            for event in events.iter() {
                match event.token() {
                    WAKER | upgrade::LINK => {}
                    SIGNALS => self.on_signals(),
                    t if bus::REDIS.contains(&t) => self.on_redis(Some(event), now),
                    Token(t) if t >= LISTENER_BASE => self.accept(t - LISTENER_BASE, now),
                    Token(k) => {
                        if event.is_writable() {
                            self.mark_dirty(k);
                        }
                        let hangup = event.is_read_closed() || event.is_error();
                        if event.is_readable() || hangup {
                            self.on_readable(k, now, hangup);
                        }
                    }
                }
            }
            for k in std::mem::take(&mut self.read_again) {
                self.on_readable(k, now, true);
            }
            if self.flag.load(Ordering::SeqCst) && !self.shutting_down {
                self.begin_shutdown(now);
            }
            self.on_timers(now);
            self.flush_bus(now);
            self.flush_dirty(now);
            if self.socket_freed || self.timers.fire(Timer::RetryAccept, now) {
                self.retry_paused_accepts(now);
            }
            self.socket_freed = false;
            if self.upgrade_if_requested(now) {
                return Ok(());
            }
            self.schedule(now);
            if self.shutting_down
                && (self.conns.is_empty() || self.timers.fire(Timer::Shutdown, now))
            {
                log::info!("shut down ({} connections left)", self.conns.len());
                return Ok(());
            }
        }
    }

    /// Fires every deadline that has passed.
    fn on_timers(&mut self, now: u64) {
        if self.timers.fire(Timer::Engine, now) {
            self.feed(now, Input::Timeout);
        }
        while let Some(k) = self.timers.pop_expired(now, &self.conns) {
            if self.conns[k].is_request() {
                self.counters.request_timeouts += 1;
            }
            self.drop_conn(k);
        }
        self.report_closed(now);
        if self.timers.fire(Timer::ReleaseBuffers, now) {
            self.last_text = None;
            self.last_frame = Vec::new();
            self.pool.clear();
        }
        if self.timers.fire(Timer::Redis, now) {
            self.on_redis(None, now);
        }
        if self.timers.fire(Timer::FlushJournal, now)
            && let Some(journal) = &mut self.journal
        {
            journal.flush();
        }
    }

    /// Sets the named deadlines for what this turn left behind.
    fn schedule(&mut self, now: u64) {
        match self.engine.poll_timeout() {
            Some(at) => self.timers.set(Timer::Engine, at),
            None => self.timers.clear(Timer::Engine),
        }
        // Spare buffers go a second after the last turn that sent
        // anything: a server busy sending keeps reusing them (clearing them
        // mid-burst made every member's buffer grow again by reallocation),
        // a quiet one holds none.
        if self.turn_output > 0 {
            self.timers
                .set(Timer::ReleaseBuffers, now + IDLE_RELEASE_MS);
        } else if self.pool.bytes() > 0 || !self.last_frame.is_empty() {
            self.timers
                .set_if_unset(Timer::ReleaseBuffers, now + IDLE_RELEASE_MS);
        }
        if self.journal.as_ref().is_some_and(|j| j.has_buffered()) {
            let flush_at = now + crate::journal::writer::FLUSH_INTERVAL_MS;
            self.timers.set_if_unset(Timer::FlushJournal, flush_at);
        }
        match self.redis.as_ref().and_then(|b| b.client.next_deadline()) {
            Some(at) => self.timers.set(Timer::Redis, at),
            None => self.timers.clear(Timer::Redis),
        }
        if self.accept_paused.contains(&true) {
            self.timers
                .set_if_unset(Timer::RetryAccept, now + IDLE_RELEASE_MS);
        }
    }

    /// THE seam where every engine input passes (the journal hooks in
    /// here): the input goes to the engine, its outputs are carried out, and
    /// connections dropped meanwhile are reported to the engine in turn.
    fn feed(&mut self, now: u64, input: Input) {
        self.feed_one(now, input);
        while let Some(conn) = self.closed.pop() {
            self.feed_one(now, Input::Closed { conn });
        }
    }

    /// One input to the engine and its outputs carried out. The input is
    /// moved only into the engine: an `Input` is large enough that every
    /// move is a `memcpy` call, and passing it through an `Option` (and a
    /// tuple with the journal's copy) made four per relayed message.
    fn feed_one(&mut self, now: u64, input: Input) {
        let journaled = self.journal.is_some().then(|| input.clone());
        self.engine.handle(now, input);
        let mut outputs = std::mem::take(&mut self.outputs);
        self.engine.take_outputs(&mut outputs);
        if let Some(journal) = &mut self.journal
            && let Some(input) = &journaled
        {
            journal.record(now, input, &outputs);
        }
        // Applied by reference and dropped all at once afterwards: a
        // broadcast's shared `Arc` is released in one tight loop, not
        // by an atomic after each recipient's copy (which would wait
        // for that copy's stores to reach the cache).
        for output in &outputs {
            self.apply(now, output);
        }
        outputs.clear();
        self.outputs = outputs;
    }

    /// Tells the engine of every WebSocket dropped without its knowing.
    fn report_closed(&mut self, now: u64) {
        if let Some(conn) = self.closed.pop() {
            self.feed(now, Input::Closed { conn });
        }
    }

    /// Carries out one engine output.
    fn apply(&mut self, now: u64, output: &Output) {
        let id = match output {
            Output::Send { conn, .. }
            | Output::Ping { conn }
            | Output::Close { conn, .. }
            | Output::Terminate { conn } => *conn,
            Output::Bus { id, command } => return self.send_bus(now, *id, command),
        };
        let Some(&k) = self.tokens.get(&id) else {
            log::debug!("output for unknown {id:?} ignored");
            return;
        };
        let Some(conn) = self.conns.get_mut(k) else {
            return;
        };
        if let Output::Terminate { .. } = output {
            // The engine has forgotten it already: it is not told again.
            self.remove_conn(k);
            return;
        }
        let Some((_, codec, _)) = conn.websocket() else {
            return;
        };
        match output {
            Output::Send { text, .. } if codec.is_open() => {
                // A broadcast is one `Arc` for every recipient: frame it once.
                self.turn_output += text.len();
                if !self
                    .last_text
                    .as_ref()
                    .is_some_and(|t| Arc::ptr_eq(t, text))
                {
                    self.last_frame.clear();
                    write_frame(&mut self.last_frame, OPCODE_TEXT, text.as_bytes());
                    self.last_text = Some(Arc::clone(text));
                }
                if codec.needs_buffer() {
                    codec.give_buffer(self.pool.take());
                }
                codec.send_encoded(&self.last_frame);
            }
            Output::Ping { .. } => codec.send_ping(),
            Output::Close { reason, .. } => {
                if *reason == CloseReason::TokenExpired {
                    self.counters.token_expiry_closes += 1;
                }
                conn.close(*reason, now + CLOSE_GRACE_MS);
                self.timers.watch(k, &self.conns[k]);
            }
            _ => return,
        }
        self.mark_dirty(k);
    }

    /// The reactor's counters, with the open-socket gauges read off its
    /// tables (every socket is in `conns`, every WebSocket in `tokens`).
    fn counters(&self) -> ServerCounters {
        ServerCounters {
            websockets_open: self.tokens.len() as u64,
            sockets_open: self.conns.len() as u64,
            tls_certificate_expiry: self.tls.as_ref().map(|t| t.not_after_secs),
            redis: self.redis.as_ref().map(|b| b.counters),
            ..self.counters
        }
    }

    fn mark_dirty(&mut self, k: usize) {
        if let Some(conn) = self.conns.get_mut(k)
            && conn.mark_dirty()
        {
            self.dirty.push(k);
        }
    }
}
