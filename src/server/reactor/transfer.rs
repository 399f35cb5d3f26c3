//! Moving bytes: reading a socket within its budget, decoding WebSocket
//! messages one at a time into engine inputs, flushing every touched
//! connection once per turn, and shedding the largest holders when all
//! together are over a memory budget ([`crate::server::budget`]).

use super::{CLOSE_GRACE_MS, Reactor};
use crate::engine::{ConnId, Input};
use crate::protocol::close::CloseReason;
use crate::protocol::http::MAX_REQUEST_BYTES;
use crate::protocol::token::auth_message_token;
use crate::protocol::websocket::{Decoded, Received};
use crate::server::connection::{Life, ReadOutcome};

/// Bytes read from one socket per read call (the shared scratch buffer).
pub(super) const READ_CHUNK: usize = 16 * 1024;
/// Bytes read from one connection per loop turn before others get a turn.
const READ_BUDGET: usize = 256 * 1024;
/// Outbound bytes queued in one loop turn after which reading pauses until
/// the next turn, so that a burst into a large room is flushed as it goes
/// rather than piled up (and so that no reader looks like a slow consumer
/// just because the turn was long). Large enough that a burst of a few
/// hundred messages into a 1,000-member room is one write per member: at
/// 16 MiB the same burst took two turns and twice the `send` calls, and
/// the kernel's per-call cost showed as 25% fewer deliveries per CPU second.
pub(super) const TURN_OUTPUT_LIMIT: usize = 64 << 20;

impl Reactor {
    /// Reads what the socket has (up to a budget) and acts on it. A read
    /// that does not fill the buffer has emptied the socket (data arriving
    /// later raises a new edge), so no extra read is spent on `WouldBlock`
    /// unless `to_the_end` (a hangup, whose EOF must be seen, or a resumed
    /// read).
    pub(super) fn on_readable(&mut self, k: usize, now: u64, to_the_end: bool) {
        let mut budget = READ_BUDGET;
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(conn) = self.conns.get_mut(k) {
            if budget == 0 || self.turn_output >= TURN_OUTPUT_LIMIT {
                self.read_again.push(k);
                break;
            }
            let (n, filled) = match conn.read(&mut scratch, MAX_REQUEST_BYTES) {
                ReadOutcome::Data { n, filled } => (n, filled),
                ReadOutcome::WouldBlock => {
                    // A TLS handshake's records wait to be sent.
                    if conn.wants_write() {
                        self.mark_dirty(k);
                    }
                    break;
                }
                ReadOutcome::BadTls { in_handshake } => {
                    self.counters.tls_handshake_failures += u64::from(in_handshake);
                    self.drop_conn(k);
                    self.report_closed(now);
                    break;
                }
                ReadOutcome::Gone => {
                    self.drop_conn(k);
                    self.report_closed(now);
                    break;
                }
            };
            if let Some(buf) = conn.request_buf() {
                buf.extend_from_slice(&scratch[..n]);
                self.on_request_bytes(k, now);
            } else {
                self.on_ws_bytes(k, &scratch[..n], now);
            }
            if !filled && !to_the_end {
                break;
            }
            budget = budget.saturating_sub(n);
        }
        self.scratch = scratch;
    }

    /// Decodes `input` on WebSocket `k` one message at a time, feeding
    /// each to the engine before the next is decoded, so that everything
    /// the engine answers is queued before any later pong, close reply or
    /// protocol error's close frame.
    pub(super) fn on_ws_bytes(&mut self, k: usize, mut input: &[u8], now: u64) {
        loop {
            let Some((id, codec, life)) = self.conns.get_mut(k).and_then(|c| c.websocket()) else {
                return;
            };
            let (taken, decoded) = codec.decode(input);
            input = &input[taken..];
            match decoded {
                // Once the engine closed it, the rest is decoded (to see
                // the client's close) but not fed.
                Decoded::Message(message) if life == Life::Open => {
                    let input = match message {
                        Received::Text(text) => self.text_input(id, text, now),
                        Received::Binary(len) => Input::Binary { conn: id, len },
                        Received::Alive => Input::Pong { conn: id },
                    };
                    self.feed(now, input);
                }
                Decoded::Message(_) => {}
                Decoded::NeedMore => break,
                Decoded::Finished => return self.finish(k, now),
                Decoded::Failed(_) => {
                    self.after_failure(k, now);
                    break;
                }
            }
        }
        let Some(conn) = self.conns.get_mut(k) else {
            return;
        };
        if conn.wants_write() && conn.mark_dirty() {
            self.dirty.push(k);
        }
        let pending = conn
            .websocket()
            .map_or(0, |(_, codec, _)| codec.pending_input());
        self.inbound.update(&mut conn.held.inbound, pending);
        if self.inbound.over() {
            self.shed_largest_inbound(now);
        }
    }

    /// The engine's input for a text message: with signed identities on,
    /// an in-band `auth` message is verified here and the engine gets the
    /// result (never the token, which is neither logged nor journaled).
    fn text_input(&mut self, conn: ConnId, text: String, now: u64) -> Input {
        let Some(verifier) = &self.verifier else {
            return Input::Text { conn, text };
        };
        let Some(token) = auth_message_token(&text) else {
            return Input::Text { conn, text };
        };
        let result = verifier.verify(&token, now / 1000);
        if let Err(refusal) = result {
            self.counters.refuse_token(refusal);
        }
        Input::Auth { conn, result }
    }

    /// A WebSocket failed (its close frame is queued): the engine is told,
    /// and the socket goes once the peer closes too or at a deadline.
    fn after_failure(&mut self, k: usize, now: u64) {
        let Some(conn) = self.conns.get_mut(k) else {
            return;
        };
        if let Some(id) = conn.leave_open(Life::Failed {
            deadline_ms: now + CLOSE_GRACE_MS / 2,
        }) {
            self.closed.push(id);
        }
        self.inbound.update(&mut conn.held.inbound, 0);
        self.timers.watch(k, &self.conns[k]);
        self.mark_dirty(k);
        self.report_closed(now);
    }

    /// The close handshake is done: the socket goes once its bytes are out.
    fn finish(&mut self, k: usize, now: u64) {
        let Some(conn) = self.conns.get_mut(k) else {
            return;
        };
        if let Some(id) = conn.ws_id() {
            self.tokens.remove(&id);
        }
        if let Some(id) = conn.leave_open(Life::Finished {
            deadline_ms: now + CLOSE_GRACE_MS,
        }) {
            self.closed.push(id);
        }
        self.timers.watch(k, &self.conns[k]);
        self.mark_dirty(k);
        self.report_closed(now);
    }

    /// All incomplete incoming messages together are over budget: closes
    /// the connections holding the most (1009) until they are not.
    fn shed_largest_inbound(&mut self, now: u64) {
        let holders = self.conns.iter().map(|(k, c)| (k, c.held.inbound));
        for (k, held) in self.inbound.largest_holders(holders) {
            let conn = &mut self.conns[k];
            log::info!(
                "{}: {held} bytes of an incoming message held, all over budget: closing 1009",
                conn.peer()
            );
            if let Some((_, codec, _)) = conn.websocket() {
                codec.fail(CloseReason::InboundBudget);
            }
            self.counters.inbound_budget_closes += 1;
            self.after_failure(k, now);
        }
    }

    /// Flushes every touched connection once; then, while all queues
    /// together exceed `--max-total-outbound-bytes`, drops the largest.
    pub(super) fn flush_dirty(&mut self, now: u64) {
        self.flush_touched(now);
        while self.outbound.over() {
            let holders = self.conns.iter().map(|(k, c)| (k, c.held.outbound));
            let shed = self.outbound.largest_holders(holders);
            if shed.is_empty() {
                break;
            }
            for (k, queued) in shed {
                log::info!("slow consumer dropped: {queued} bytes queued, all queues over budget");
                self.counters.slow_consumer_drops += 1;
                self.drop_conn(k);
            }
            self.report_closed(now);
            self.flush_touched(now);
        }
    }

    fn flush_touched(&mut self, now: u64) {
        while !self.dirty.is_empty() {
            for k in std::mem::take(&mut self.dirty) {
                let Some(conn) = self.conns.get_mut(k) else {
                    continue;
                };
                let flushed = match conn.flush() {
                    Ok(flushed) => flushed,
                    Err(e) => {
                        log::debug!("{}: write error {e}", conn.peer());
                        self.drop_conn(k);
                        continue;
                    }
                };
                if let Some(spare) = flushed.spare {
                    self.pool.give(spare);
                }
                let queued = flushed.queued;
                self.outbound.update(&mut conn.held.outbound, queued);
                // A slow consumer: more queued than the limit even after
                // the socket took what it could (judged once per turn, so a
                // long turn alone never makes a reader look slow).
                if queued > self.config.max_outbound_bytes {
                    log::info!(
                        "{}: slow consumer dropped ({queued} bytes queued)",
                        conn.peer()
                    );
                    self.counters.slow_consumer_drops += 1;
                    self.drop_conn(k);
                    continue;
                }
                if flushed.done {
                    self.drop_conn(k);
                    continue;
                }
                let registry = self.poll.registry();
                if let Err(e) = conn.update_registration(registry, mio::Token(k), flushed.drained) {
                    log::debug!("reregister: {e}");
                    self.drop_conn(k);
                }
            }
            self.report_closed(now);
        }
    }

    /// Removes a connection; a WebSocket the engine still knows is queued
    /// for [`Input::Closed`].
    pub(super) fn drop_conn(&mut self, k: usize) {
        if let Some(id) = self.remove_conn(k) {
            self.closed.push(id);
        }
    }

    /// Removes a connection and frees what it held; returns the engine id
    /// of a WebSocket the engine still has open (the caller decides
    /// whether the engine is told).
    pub(super) fn remove_conn(&mut self, k: usize) -> Option<ConnId> {
        if !self.conns.contains(k) {
            return None;
        }
        let mut conn = self.conns.remove(k);
        self.outbound.release(conn.held.outbound);
        self.inbound.release(conn.held.inbound);
        self.socket_freed = true;
        conn.deregister(self.poll.registry());
        if let Some(id) = conn.ws_id() {
            self.tokens.remove(&id);
        }
        conn.open_id()
    }
}
