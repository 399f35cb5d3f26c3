//! The new process's side of a live upgrade: a reactor rebuilt from the
//! hand-over (the engine restored, the clock going on, the journal
//! appended to, every connection back in the tables with its deadline)
//! that tells the old process it serves once it runs.

use super::Reactor;
use super::early::Early;
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
use mio::Token;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

/// An error of a hand-over that cannot be taken.
fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("hand-over: {e}"))
}

impl Reactor {
    /// A reactor that goes on from `handover`, whose descriptors are `fds`
    /// (listeners first); `link` is told once it serves
    /// ([`Self::confirm_serving`]).
    pub fn resume(
        config: Config,
        handover: Handover,
        fds: Vec<OwnedFd>,
        tls: Option<TlsIdentity>,
        verifier: Option<Verifier>,
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
        let engine = Engine::restore(&handover.engine).map_err(invalid)?;
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
        let mut reactor = Self::assemble(config, listeners, tls, verifier, parts)?;
        reactor.next_id = handover.next_id;
        reactor.next_serial = handover.next_serial;
        reactor.counters = handover.counters;
        reactor.counters.upgrades_done += 1;
        let now = reactor.clock.now_ms();
        for (record, fd) in handover.conns.into_iter().zip(fds) {
            reactor.take_conn(record, fd);
        }
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

    /// Puts one handed-over connection back in the tables, to be flushed
    /// in the first turn; one that cannot be registered is dropped (the
    /// engine is told).
    fn take_conn(&mut self, record: ConnRecord, fd: OwnedFd) {
        let stream = mio::net::TcpStream::from_std(std::net::TcpStream::from(fd));
        let k = self.conns.vacant_entry().key();
        self.next_serial += 1;
        let registry = self.poll.registry();
        let max = self.config.max_message_size;
        let open_id = match &record.phase {
            Phase::WebSocket {
                id,
                life: Life::Open,
                ..
            } => Some(ConnId(*id)),
            _ => None,
        };
        match Connection::resume(stream, record, self.next_serial, max, registry, Token(k)) {
            Ok((conn, websocket)) => {
                self.conns.insert(conn);
                if let Some((id, life)) = websocket
                    && !matches!(life, Life::Finished { .. })
                {
                    self.tokens.insert(id, k);
                }
                let conn = &mut self.conns[k];
                let pending = conn
                    .websocket()
                    .map_or(0, |(_, codec, _)| codec.pending_input());
                self.inbound.update(&mut conn.held.inbound, pending);
                self.timers.watch(k, &self.conns[k]);
                self.mark_dirty(k);
            }
            Err(e) => {
                log::warn!("upgrade: a connection could not be taken over: {e}");
                if let Some(id) = open_id {
                    self.closed.push(id);
                }
            }
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
