//! The single-threaded mio reactor: accepts, reads, hands inputs to the
//! engine, applies its outputs, flushes each touched connection once per
//! loop turn.
//!
//! Every engine input passes through one method, `Reactor::feed` (the seam
//! for journaling).

use crate::engine::{ConnId, ConnMap, Engine, EngineConfig, Input, Output};
use crate::journal::JournalWriter;
use crate::protocol::close::CloseReason;
use crate::protocol::frame::{OPCODE_PING, OPCODE_TEXT, write_frame};
use crate::protocol::http::MAX_REQUEST_BYTES;
use crate::server::buffer_pool::BufferPool;
use crate::server::clock::Clock;
use crate::server::config::Config;
use crate::server::connection::{Connection, Flow, Phase, WsEvent};
use crate::server::metrics::ServerCounters;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a closing WebSocket waits for the peer's close frame.
pub const CLOSE_GRACE_MS: u64 = 2_000;
/// How long shutdown waits for close handshakes.
pub const SHUTDOWN_GRACE_MS: u64 = 5_000;
/// Bytes read from one socket per read call (the shared scratch buffer).
const READ_CHUNK: usize = 16 * 1024;
/// Bytes read from one connection per loop turn before others get a turn.
const READ_BUDGET: usize = 256 * 1024;
/// Outbound bytes queued in one loop turn after which reading pauses until
/// the next turn, so that a burst into a large room is flushed as it goes
/// rather than piled up (and so that no reader looks like a slow consumer
/// just because the turn was long). Large enough that a burst of a few
/// hundred messages into a 1,000-member room is one write per member: at
/// 16 MiB the same burst took two turns and twice the `send` calls, and
/// the kernel's per-call cost showed as 25% fewer deliveries per CPU second.
const TURN_OUTPUT_LIMIT: usize = 64 << 20;
/// Sockets beyond `--max-connections` still accepted so that they can be
/// answered `503` (or HTTP endpoints) rather than left in the backlog.
const EXTRA_SOCKETS: usize = 1024;
/// Spare outbound buffer capacity kept between loop turns: as much as one
/// turn may produce, so that the buffers of a burst into a large room are
/// reused by the next burst rather than grown again (at 16 MiB a
/// 1,000-member fanout lost a third of its deliveries per CPU second).
/// Freed every tick.
const POOL_BYTES: usize = TURN_OUTPUT_LIMIT;

const WAKER: Token = Token(usize::MAX);
const SIGNALS: Token = Token(usize::MAX - 1);
const LISTENER_BASE: usize = usize::MAX - 1024;

/// Asks a running reactor to shut down (from any thread).
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ShutdownHandle {
    /// Starts the graceful shutdown.
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            log::warn!("could not wake the reactor: {e}");
        }
    }
}

/// The reactor and everything it owns.
pub struct Reactor {
    /// The input journal (`--journal`), if any.
    journal: Option<JournalWriter<std::fs::File>>,
    poll: Poll,
    listeners: Vec<TcpListener>,
    conns: Slab<Connection>,
    tokens: ConnMap<usize>,
    engine: Engine,
    clock: Clock,
    config: Config,
    counters: ServerCounters,
    next_id: u64,
    scratch: Vec<u8>,
    outputs: Vec<Output>,
    /// The last text sent and its encoded frame: a broadcast is framed once
    /// and copied to every recipient.
    last_text: Option<Arc<str>>,
    last_frame: Vec<u8>,
    events: Vec<WsEvent>,
    dirty: Vec<usize>,
    /// Outbound buffers not in use: a connection holds one only while it
    /// has bytes queued.
    pool: BufferPool,
    /// Connections the tick's sweep looks at: those with a deadline (not
    /// every connection, so an idle server touches nothing per tick).
    watched: Vec<usize>,
    /// Bytes queued for all connections, as of their last flush.
    queued_total: usize,
    /// Bytes of incomplete incoming messages held for all connections.
    inbound_total: usize,
    read_again: Vec<usize>,
    closed: Vec<ConnId>,
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    tick_ms: u64,
    next_tick_ms: u64,
    shutdown_deadline_ms: Option<u64>,
    turn_output: usize,
    /// Per listener: accepting failed for lack of resources, so it is
    /// retried (see `accept`).
    accept_paused: Vec<bool>,
    /// A socket was closed this turn (so a paused accept may succeed).
    socket_freed: bool,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("connections", &self.conns.len())
            .finish()
    }
}

mod handshake;

impl Reactor {
    /// A reactor on already-bound listeners, with an engine seeded `seed`.
    pub fn new(
        config: Config,
        listeners: Vec<std::net::TcpListener>,
        seed: u64,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut mio_listeners = Vec::new();
        for (i, l) in listeners.into_iter().enumerate() {
            l.set_nonblocking(true)?;
            let mut l = TcpListener::from_std(l);
            poll.registry()
                .register(&mut l, Token(LISTENER_BASE + i), Interest::READABLE)?;
            mio_listeners.push(l);
        }
        let listener_count = mio_listeners.len();
        let engine_config = EngineConfig {
            heartbeat_interval_ms: config.heartbeat_interval.as_millis().max(1) as u64,
            rate_limit_per_sec: config.rate_limit,
            rate_limit_burst: config.rate_limit.saturating_mul(2),
            ..EngineConfig::default()
        };
        // The engine is woken every timer granule (its deadlines are
        // rounded to it).
        let tick_ms = engine_config.timer_granularity_ms();
        let clock = Clock::start();
        let now = clock.now_ms();
        log::info!("engine seed {seed}");
        let journal = match &config.journal {
            None => None,
            Some(path) => {
                let file = std::fs::File::create(path).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot create journal {}: {e}", path.display()),
                    )
                })?;
                log::info!("journaling engine inputs to {}", path.display());
                Some(JournalWriter::new(file, seed, &engine_config, now))
            }
        };
        Ok(Reactor {
            poll,
            listeners: mio_listeners,
            conns: Slab::new(),
            tokens: ConnMap::default(),
            engine: Engine::new(engine_config, seed),
            journal,
            clock,
            config,
            counters: ServerCounters::default(),
            next_id: 1,
            scratch: vec![0; READ_CHUNK],
            outputs: Vec::new(),
            last_text: None,
            last_frame: Vec::new(),
            events: Vec::new(),
            dirty: Vec::new(),
            pool: BufferPool::new(POOL_BYTES),
            watched: Vec::new(),
            queued_total: 0,
            inbound_total: 0,
            read_again: Vec::new(),
            closed: Vec::new(),
            flag: Arc::new(AtomicBool::new(false)),
            waker,
            signals: None,
            tick_ms,
            next_tick_ms: now + tick_ms,
            shutdown_deadline_ms: None,
            turn_output: 0,
            accept_paused: vec![false; listener_count],
            socket_freed: false,
        })
    }

    /// The listeners' local addresses.
    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// A handle that starts the shutdown from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            flag: self.flag.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Shuts down on SIGTERM and SIGINT.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        let mut signals = signal_hook_mio::v1_0::Signals::new([
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
        ])?;
        self.poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

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
            let now = self.clock.now_ms();
            let timeout = if self.read_again.is_empty() {
                self.next_tick_ms.saturating_sub(now)
            } else {
                0
            };
            match self
                .poll
                .poll(&mut events, Some(Duration::from_millis(timeout)))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            let now = self.clock.now_ms();
            self.turn_output = 0;
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    SIGNALS => self.on_signals(),
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
            if self.flag.load(Ordering::SeqCst) && self.shutdown_deadline_ms.is_none() {
                self.begin_shutdown(now);
            }
            let tick = now >= self.next_tick_ms;
            if tick {
                self.next_tick_ms = now + self.tick_ms;
                self.feed(now, Input::Timeout);
                self.sweep(now);
                if let Some(journal) = &mut self.journal {
                    journal.flush_if_due(now);
                }
            }
            self.flush_dirty(now);
            if tick || self.socket_freed {
                for i in 0..self.listeners.len() {
                    if self.accept_paused[i] {
                        self.accept(i, now);
                    }
                }
            }
            self.socket_freed = false;
            if let Some(deadline) = self.shutdown_deadline_ms
                && (self.conns.is_empty() || now >= deadline)
            {
                log::info!("shut down ({} connections left)", self.conns.len());
                return Ok(());
            }
        }
    }

    /// THE seam where every engine input passes (the journal hooks in
    /// here): the input goes to the engine, its outputs are carried out, and
    /// connections dropped meanwhile are reported to the engine in turn.
    fn feed(&mut self, now: u64, input: Input) {
        let mut next = Some(input);
        while let Some(input) = next {
            let journaled = self.journal.as_ref().map(|_| input.clone());
            self.engine.handle(now, input);
            let mut outputs = std::mem::take(&mut self.outputs);
            self.engine.take_outputs(&mut outputs);
            if let (Some(journal), Some(input)) = (&mut self.journal, journaled) {
                journal.record(now, &input, &outputs);
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
            next = self.closed.pop().map(|conn| Input::Closed { conn });
        }
    }

    fn apply(&mut self, now: u64, output: &Output) {
        let id = match output {
            Output::Send { conn, .. }
            | Output::Ping { conn }
            | Output::Close { conn, .. }
            | Output::Terminate { conn } => *conn,
        };
        let Some(&k) = self.tokens.get(&id) else {
            log::debug!("output for unknown {id:?} ignored");
            return;
        };
        let Some(conn) = self.conns.get_mut(k) else {
            return;
        };
        let Phase::WebSocket(ws) = &mut conn.phase else {
            return;
        };
        match output {
            Output::Send { text, .. } if ws.is_open() => {
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
                if conn.out.capacity() == 0 {
                    conn.out = self.pool.take();
                }
                conn.out.extend_from_slice(&self.last_frame);
            }
            Output::Ping { .. } if ws.is_open() => write_frame(&mut conn.out, OPCODE_PING, &[]),
            Output::Close { reason, .. } if ws.is_open() => {
                ws.queue_close(&mut conn.out, *reason);
                ws.closing_deadline_ms = Some(now + CLOSE_GRACE_MS);
                self.mark_dirty(k);
                return self.watch(k);
            }
            Output::Terminate { .. } => return self.drop_conn(k),
            _ => return,
        }
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(k);
        }
    }

    fn request_timeout_ms(&self) -> u64 {
        self.config.request_timeout.as_millis() as u64
    }

    /// The reactor's counters, with the open-socket gauges read off its
    /// tables (every socket is in `conns`, every open WebSocket in `tokens`).
    fn counters(&self) -> ServerCounters {
        ServerCounters {
            websockets_open: self.tokens.len() as u64,
            sockets_open: self.conns.len() as u64,
            ..self.counters
        }
    }

    fn mark_dirty(&mut self, k: usize) {
        if let Some(conn) = self.conns.get_mut(k)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(k);
        }
    }

    /// Lists a connection for the tick's sweep (it has a deadline now).
    fn watch(&mut self, k: usize) {
        if let Some(conn) = self.conns.get_mut(k)
            && !conn.watched
        {
            conn.watched = true;
            self.watched.push(k);
        }
    }

    /// Removes a connection; a WebSocket the engine still knows is queued
    /// for [`Input::Closed`].
    fn drop_conn(&mut self, k: usize) {
        if !self.conns.contains(k) {
            return;
        }
        let mut conn = self.conns.remove(k);
        self.queued_total = self.queued_total.saturating_sub(conn.accounted);
        self.inbound_total = self.inbound_total.saturating_sub(conn.inbound);
        self.socket_freed = true;
        if let Err(e) = self.poll.registry().deregister(&mut conn.stream) {
            log::debug!("deregister: {e}");
        }
        if let Phase::WebSocket(ws) = conn.phase {
            self.tokens.remove(&ws.id);
            if !ws.engine_told {
                self.closed.push(ws.id);
            }
        }
    }

    fn on_signals(&mut self) {
        if let Some(signals) = &mut self.signals {
            for signal in signals.pending() {
                log::info!("signal {signal}: shutting down");
                self.flag.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Reads what the socket has (up to a budget) and acts on it. A read
    /// that does not fill the buffer has emptied the socket (data arriving
    /// later raises a new edge), so no extra read is spent on `WouldBlock`
    /// unless `to_the_end` (a hangup, whose EOF must be seen, or a resumed
    /// read).
    fn on_readable(&mut self, k: usize, now: u64, to_the_end: bool) {
        let mut budget = READ_BUDGET;
        while let Some(conn) = self.conns.get_mut(k) {
            if budget == 0 || self.turn_output >= TURN_OUTPUT_LIMIT {
                self.read_again.push(k);
                return;
            }
            let want = match &conn.phase {
                Phase::Request { buf, .. } => (MAX_REQUEST_BYTES + 1).saturating_sub(buf.len()),
                _ => READ_CHUNK,
            };
            let want = want.min(READ_CHUNK);
            let n = match conn.stream.read(&mut self.scratch[..want]) {
                // A peer that half-closes after its request still gets the
                // answer: the flush closes the socket.
                Ok(0) if matches!(conn.phase, Phase::Answered { .. }) => return,
                Ok(0) => return self.peer_gone(k),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("{}: read error {e}", conn.peer);
                    return self.peer_gone(k);
                }
            };
            match &mut conn.phase {
                Phase::Request { buf, .. } => {
                    buf.extend_from_slice(&self.scratch[..n]);
                    self.on_request_bytes(k, now);
                }
                Phase::Answered { .. } => {}
                Phase::WebSocket(_) => self.on_ws_bytes(k, n, now),
            }
            if n < want && !to_the_end {
                return;
            }
            budget = budget.saturating_sub(n);
        }
    }

    /// The peer closed or reset the socket.
    fn peer_gone(&mut self, k: usize) {
        self.drop_conn(k);
        if let Some(conn) = self.closed.pop() {
            self.feed(self.clock.now_ms(), Input::Closed { conn });
        }
    }

    /// Decodes `scratch[..n]` on WebSocket `k` and feeds its messages.
    fn on_ws_bytes(&mut self, k: usize, n: usize, now: u64) {
        let Some(conn) = self.conns.get_mut(k) else {
            return;
        };
        let Phase::WebSocket(ws) = &mut conn.phase else {
            return;
        };
        let flow = ws.receive(&self.scratch[..n], &mut conn.out, &mut self.events);
        let id = ws.id;
        let pending = ws.pending_bytes();
        self.inbound_total = self.inbound_total.saturating_sub(conn.inbound) + pending;
        conn.inbound = pending;
        if !conn.out.is_empty() {
            self.mark_dirty(k);
        }
        let mut events = std::mem::take(&mut self.events);
        for event in events.drain(..) {
            // Once the engine closed or terminated it, the rest is not fed.
            let open = matches!(
                self.conns.get(k).map(|c| &c.phase),
                Some(Phase::WebSocket(ws)) if ws.id == id && ws.is_open()
            );
            if open {
                let input = match event {
                    WsEvent::Text(text) => Input::Text { conn: id, text },
                    WsEvent::Binary(len) => Input::Binary { conn: id, len },
                    WsEvent::Alive => Input::Pong { conn: id },
                };
                self.feed(now, input);
            }
        }
        self.events = events;
        match flow {
            Flow::Continue => {}
            Flow::Finished => self.close_when_flushed(k, now),
            Flow::Failed(_) => self.after_failure(k, now),
        }
        if self.inbound_total > self.config.max_total_inbound_bytes {
            self.shed_largest_inbound(now);
        }
    }

    /// A WebSocket failed (its close frame is queued): the engine is told,
    /// and the socket goes once the peer closes too or at a deadline.
    fn after_failure(&mut self, k: usize, now: u64) {
        if let Some(Phase::WebSocket(ws)) = self.conns.get_mut(k).map(|c| &mut c.phase) {
            ws.closing_deadline_ms = Some(now + CLOSE_GRACE_MS / 2);
            if !ws.engine_told {
                ws.engine_told = true;
                let id = ws.id;
                self.feed(now, Input::Closed { conn: id });
            }
        }
        self.watch(k);
    }

    /// All incomplete incoming messages together are over budget: closes
    /// the connections holding the most (1009) until they are not. A
    /// client sending ordinary messages holds nothing between them, so it
    /// is never the one closed.
    fn shed_largest_inbound(&mut self, now: u64) {
        for (held, k) in self.largest_first(|c| c.inbound) {
            if self.inbound_total <= self.config.max_total_inbound_bytes {
                break;
            }
            let conn = &mut self.conns[k];
            let Phase::WebSocket(ws) = &mut conn.phase else {
                continue;
            };
            log::info!(
                "{}: {held} bytes of an incoming message held, all over budget: closing 1009",
                conn.peer
            );
            ws.fail(&mut conn.out, CloseReason::InboundBudget);
            self.inbound_total = self.inbound_total.saturating_sub(conn.inbound);
            conn.inbound = 0;
            self.counters.inbound_budget_closes += 1;
            self.mark_dirty(k);
            self.after_failure(k, now);
        }
    }

    /// The close handshake is done: the socket goes once its bytes are out.
    fn close_when_flushed(&mut self, k: usize, now: u64) {
        let Some(conn) = self.conns.get_mut(k) else {
            return;
        };
        if let Phase::WebSocket(ws) = &mut conn.phase {
            let id = ws.id;
            let told = std::mem::replace(&mut ws.engine_told, true);
            self.tokens.remove(&id);
            conn.phase = Phase::Answered {
                deadline_ms: now + CLOSE_GRACE_MS,
            };
            self.mark_dirty(k);
            self.watch(k);
            if !told {
                self.feed(now, Input::Closed { conn: id });
            }
        }
    }

    /// Flushes every touched connection once; then, while all queues
    /// together exceed `--max-total-outbound-bytes`, drops the largest.
    fn flush_dirty(&mut self, now: u64) {
        self.flush_touched(now);
        while self.queued_total > self.config.max_total_outbound_bytes && self.shed_largest_queues()
        {
            while let Some(conn) = self.closed.pop() {
                self.feed(now, Input::Closed { conn });
            }
            self.flush_touched(now);
        }
    }

    /// `(bytes, key)` of every connection holding some bytes by `bytes`,
    /// largest first (only called when a total is over its budget).
    fn largest_first(&self, bytes: impl Fn(&Connection) -> usize) -> Vec<(usize, usize)> {
        let mut held: Vec<(usize, usize)> = self
            .conns
            .iter()
            .map(|(k, c)| (bytes(c), k))
            .filter(|(n, _)| *n > 0)
            .collect();
        held.sort_unstable_by(|a, b| b.cmp(a));
        held
    }

    /// Drops the connections with the most queued bytes until the total is
    /// back under budget (a reader that keeps up holds almost nothing after
    /// a flush, so it is never the one dropped). Returns whether it dropped any.
    fn shed_largest_queues(&mut self) -> bool {
        let mut dropped = false;
        for (queued, k) in self.largest_first(|c| c.accounted) {
            if self.queued_total <= self.config.max_total_outbound_bytes {
                break;
            }
            log::info!("slow consumer dropped: {queued} bytes queued, all queues over budget");
            self.counters.slow_consumer_drops += 1;
            self.drop_conn(k);
            dropped = true;
        }
        dropped
    }

    fn flush_touched(&mut self, now: u64) {
        while !self.dirty.is_empty() {
            for k in std::mem::take(&mut self.dirty) {
                let Some(conn) = self.conns.get_mut(k) else {
                    continue;
                };
                conn.dirty = false;
                let drained = match conn.flush() {
                    Ok(drained) => drained,
                    Err(e) => {
                        log::debug!("{}: write error {e}", conn.peer);
                        self.drop_conn(k);
                        continue;
                    }
                };
                if drained {
                    self.pool.give(std::mem::take(&mut conn.out));
                }
                let queued = conn.queued();
                self.queued_total = self.queued_total.saturating_sub(conn.accounted) + queued;
                conn.accounted = queued;
                // A slow consumer: more queued than the limit even after
                // the socket took what it could (judged once per turn, so a
                // long turn alone never makes a reader look slow).
                if conn.queued() > self.config.max_outbound_bytes {
                    log::info!(
                        "{}: slow consumer dropped ({} bytes queued)",
                        conn.peer,
                        conn.queued()
                    );
                    self.counters.slow_consumer_drops += 1;
                    self.drop_conn(k);
                    continue;
                }
                if drained && matches!(conn.phase, Phase::Answered { .. }) {
                    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
                    self.drop_conn(k);
                    continue;
                }
                // A failed WebSocket: its close frame is out, so the peer
                // gets FIN at once; its socket goes when the peer closes
                // too (what it still sends is read and discarded, so that
                // no reset destroys the close frame) or at its deadline.
                if drained && matches!(&conn.phase, Phase::WebSocket(ws) if ws.failed) {
                    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
                }
                let want_write = !drained;
                if want_write != conn.write_interest {
                    conn.write_interest = want_write;
                    let interest = if want_write {
                        Interest::READABLE | Interest::WRITABLE
                    } else {
                        Interest::READABLE
                    };
                    if let Err(e) =
                        self.poll
                            .registry()
                            .reregister(&mut conn.stream, Token(k), interest)
                    {
                        log::debug!("reregister: {e}");
                        self.drop_conn(k);
                    }
                }
            }
            while let Some(conn) = self.closed.pop() {
                self.feed(now, Input::Closed { conn });
            }
        }
    }

    /// Once per tick: deadlines (slow-loris, close grace), and the spare
    /// buffers (the last broadcast's frame among them) are freed.
    fn sweep(&mut self, now: u64) {
        self.last_text = None;
        self.last_frame = Vec::new();
        self.pool.clear();
        let mut expired = Vec::new();
        let mut still = Vec::new();
        for k in std::mem::take(&mut self.watched) {
            // A key listed twice (freed and reused) is looked at once.
            let Some(conn) = self.conns.get_mut(k).filter(|c| c.watched) else {
                continue;
            };
            conn.watched = false;
            let deadline = match &conn.phase {
                Phase::Request { deadline_ms, .. } | Phase::Answered { deadline_ms } => {
                    Some(*deadline_ms)
                }
                Phase::WebSocket(ws) => ws.closing_deadline_ms,
            };
            if deadline.is_some_and(|d| now >= d) {
                if matches!(conn.phase, Phase::Request { .. }) {
                    self.counters.request_timeouts += 1;
                }
                expired.push(k);
                continue;
            }
            if deadline.is_some() {
                still.push(k);
            }
        }
        for &k in &still {
            self.conns[k].watched = true;
        }
        still.append(&mut self.watched);
        self.watched = still;
        for k in expired {
            self.drop_conn(k);
        }
        while let Some(conn) = self.closed.pop() {
            self.feed(now, Input::Closed { conn });
        }
    }

    fn begin_shutdown(&mut self, now: u64) {
        crate::server::systemd::notify_stopping();
        self.shutdown_deadline_ms = Some(now + SHUTDOWN_GRACE_MS);
        for mut l in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut l);
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        let mut told = Vec::new();
        for k in keys {
            let conn = &mut self.conns[k];
            match &mut conn.phase {
                Phase::WebSocket(ws) if !ws.failed && ws.closing_deadline_ms.is_none() => {
                    ws.queue_close(&mut conn.out, CloseReason::ShuttingDown);
                    ws.closing_deadline_ms = Some(now + SHUTDOWN_GRACE_MS);
                    if !ws.engine_told {
                        ws.engine_told = true;
                        told.push(ws.id);
                    }
                    self.mark_dirty(k);
                }
                Phase::WebSocket(_) => {}
                _ => self.drop_conn(k),
            }
        }
        for conn in told {
            self.feed(now, Input::Closed { conn });
        }
    }
}
