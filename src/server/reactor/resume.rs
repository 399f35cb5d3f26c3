//! The new process's side of a live upgrade: a reactor rebuilt from the
//! hand-over (the engine restored, the clock going on, the journal
//! appended to, every connection back in the tables with its deadline)
//! that tells the old process it serves once it runs.

use super::Reactor;
use super::accept::socket_capacity;
use super::early::{Early, register_handed_over};
use super::lifecycle::Parts;
use crate::engine::{BusInput, BusReply, ConnId, Engine, Input};
use crate::journal::JournalWriter;
use crate::protocol::token::Verifier;
use crate::server::clock::Clock;
use crate::server::config::Config;
use crate::server::connection::{Connection, Life};
use crate::server::tls::TlsIdentity;
use crate::server::upgrade::Handover;
use crate::server::upgrade::handover::{ConnRecord, Phase};
use crate::server::upgrade::presend::SocketId;
use mio::net::TcpStream;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

/// An error of a hand-over that cannot be taken.
fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("hand-over: {e}"))
}

impl Reactor {
    /// A reactor that goes on from `handover` and its `engine`, whose
    /// descriptors besides those sent ahead are `fds` (listeners first),
    /// with `keys` (the TLS identity and the token verifier); `link` is
    /// told once it serves ([`Self::confirm_serving`]).
    pub fn resume(
        config: Config,
        handover: Handover,
        engine: Engine,
        fds: Vec<OwnedFd>,
        keys: (Option<TlsIdentity>, Option<Verifier>),
        link: UnixStream,
        mut early: Early,
    ) -> io::Result<Self> {
        if fds.len() != handover.descriptors() {
            return Err(invalid(format!(
                "{} descriptors for {} sockets",
                fds.len(),
                handover.descriptors()
            )));
        }
        let engine_ready = engine.stats().cluster.is_some_and(|c| c.ready);
        let bus_inputs = early.inputs(engine_ready);
        let clock = Clock::resume(handover.now_ms);
        let journal = match (&config.journal, handover.journal_len) {
            (Some(path), Some(len)) => Some(JournalWriter::append(path, len)?),
            (Some(path), None) => {
                log::warn!(
                    "the old process was not journaling; {} is not written",
                    path.display()
                );
                None
            }
            (None, _) => None,
        };
        let ahead = std::mem::take(&mut early.ahead);
        let readable = std::mem::take(&mut early.readable);
        let mut fds = fds.into_iter();
        let listeners = handover
            .listeners
            .iter()
            .zip(fds.by_ref())
            .map(|(tls, fd)| (std::net::TcpListener::from(fd), *tls))
            .collect();
        let parts = Parts {
            engine,
            clock,
            journal,
            early: Some(early),
        };
        let (tls, verifier) = keys;
        let mut reactor = Self::assemble(config, listeners, tls, verifier, parts)?;
        reactor.next_id = handover.next_id;
        reactor.next_serial = handover.next_serial;
        reactor.counters = handover.counters;
        reactor.counters.upgrades_done += 1;
        let now = reactor.clock.now_ms();
        reactor.take_conns(handover.conns, ahead, fds);
        reactor
            .read_again
            .extend(readable.into_iter().filter(|k| reactor.conns.contains(*k)));
        if reactor.redis.is_some() {
            // The old process's Redis connections are gone: a command
            // still without a reply fails, as on a lost connection. What
            // this process's own subscription received meanwhile follows
            // (see `early`).
            for id in handover.bus_in_flight {
                let reply = BusReply::Failed;
                reactor.feed(now, Input::Bus(BusInput::Reply { id, reply }));
            }
            for input in bus_inputs {
                reactor.feed(now, input);
            }
        }
        reactor.report_closed(now);
        reactor.schedule(now);
        reactor.handover_link = Some(link);
        let pause = Clock::wall_ms().saturating_sub(handover.stopped_wall_ms);
        reactor.counters.last_handover_ms = Some(pause);
        log::info!(
            "upgrade: took over {} connection(s) and {} listener(s)",
            reactor.conns.len(),
            reactor.listeners.len()
        );
        Ok(reactor)
    }

    /// Puts the handed-over connections back in the tables under their
    /// keys, to be flushed in the first turn: each on its socket sent
    /// ahead (registered already) or the next of `beside`. One without a
    /// usable socket is dropped (the engine is told), as is one out of
    /// key order (the old process lists them in order: a key that does not
    /// grow is a key twice); sockets sent ahead that no record names
    /// (closed since) are closed.
    fn take_conns(
        &mut self,
        records: Vec<ConnRecord>,
        mut ahead: Vec<(SocketId, Option<TcpStream>)>,
        mut beside: impl Iterator<Item = OwnedFd>,
    ) {
        let max = self.config.max_message_size;
        let capacity = socket_capacity(&self.config);
        let mut conns = Vec::with_capacity(records.len());
        let mut last_key = None;
        for record in records {
            let id = SocketId {
                key: record.key,
                serial: record.serial,
            };
            // Taken whatever happens: the next record's is the next one.
            let beside = (!record.sent_ahead).then(|| beside.next());
            let socket = if last_key.is_some_and(|last| last >= id.key) {
                Err(format!("key {} out of order", id.key))
            } else if let Some(fd) = beside {
                let fd = fd.ok_or_else(|| "no socket for it".to_string());
                fd.and_then(|fd| register_handed_over(self.poll.registry(), capacity, id.key, fd))
            } else {
                take_ahead(&mut ahead, id).ok_or_else(|| "its socket sent ahead is missing".into())
            };
            match socket {
                Ok(socket) => {
                    last_key = Some(id.key);
                    conns.push((id.key, Connection::resume(socket, record, max)));
                }
                Err(e) => {
                    log::warn!("upgrade: a connection could not be taken over: {e}");
                    if let Phase::WebSocket {
                        id,
                        life: Life::Open,
                        ..
                    } = record.phase
                    {
                        self.closed.push(ConnId(id));
                    }
                }
            }
        }
        for mut closed in ahead.into_iter().filter_map(|(_, s)| s) {
            let _ = self.poll.registry().deregister(&mut closed);
        }
        let keys: Vec<usize> = conns.iter().map(|(k, _)| *k).collect();
        self.conns = conns
            .into_iter()
            .map(|(k, (conn, websocket))| {
                if let Some((id, life)) = websocket
                    && !matches!(life, Life::Finished { .. })
                {
                    self.tokens.insert(id, k);
                }
                (k, conn)
            })
            .collect();
        for k in keys {
            let conn = &mut self.conns[k];
            let pending = conn
                .websocket()
                .map_or(0, |(_, codec, _)| codec.pending_input());
            self.inbound.update(&mut conn.held.inbound, pending);
            self.timers.watch(k, &self.conns[k]);
            self.mark_dirty(k);
        }
    }

    /// In a process started by a live upgrade: tells the old process that
    /// this one serves (it exits then). `Ok(false)` in any other process.
    pub fn confirm_serving(&mut self) -> io::Result<bool> {
        let Some(link) = self.handover_link.take() else {
            return Ok(false);
        };
        crate::server::upgrade::child::confirm_serving(&link)?;
        log::info!("upgrade: serving as pid {}", std::process::id());
        Ok(true)
    }
}

/// The socket sent ahead as `id`, if it came (each is taken once).
fn take_ahead(ahead: &mut [(SocketId, Option<TcpStream>)], id: SocketId) -> Option<TcpStream> {
    let i = ahead.binary_search_by_key(&id.key, |(a, _)| a.key).ok()?;
    match ahead[i].0 == id {
        true => ahead[i].1.take(),
        false => None,
    }
}
