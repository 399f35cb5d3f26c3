//! The reactor's first steps with a connection: accepting it, reading its
//! HTTP request, and answering or upgrading it (what to answer is decided
//! in [`crate::server::http`]).

use super::{CLOSE_GRACE_MS, Reactor};
use crate::engine::{ConnId, Input};
use crate::protocol::Protocol;
use crate::protocol::http::{MAX_REQUEST_BYTES, Parsed, Request, parse_request};
use crate::protocol::token::{Identity, selected_protocol, token_of, without_token};
use crate::protocol::websocket::Codec;
use crate::server::auth::AuthMode;
use crate::server::connection::Connection;
use crate::server::http::{self, Decision, ServerView};
use mio::Token;
use std::io;

/// Sockets beyond `--max-connections` still accepted so that they can be
/// answered `503` (or HTTP endpoints) rather than left in the backlog.
const EXTRA_SOCKETS: usize = 1024;

/// The most sockets `config` lets the reactor hold: every slab key is
/// below it.
pub(super) fn socket_capacity(config: &crate::server::Config) -> usize {
    config.max_connections + EXTRA_SOCKETS
}

impl Reactor {
    /// Accepts every connection queued on listener `i`. After a resource
    /// error (`EMFILE`, `ENFILE`, `ENOBUFS`...) the edge-triggered listener
    /// will not fire for the connections still queued, so accepting is
    /// marked paused and retried as sockets close and on a timer.
    pub(super) fn accept(&mut self, i: usize, now: u64) {
        loop {
            let listener = self.listeners.get(i).map(|l| (l.socket.accept(), l.tls));
            let (accepted, tls) = match listener {
                Some((accepted, tls)) => (Some(accepted), tls),
                None => (None, false),
            };
            let (stream, peer) = match accepted {
                Some(Ok(pair)) => pair,
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    if std::mem::take(&mut self.accept_paused[i])
                        && !self.accept_paused.contains(&true)
                    {
                        log::info!("accepting connections again");
                    }
                    return;
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                // That one connection is gone; the next may be fine.
                Some(Err(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    log::debug!("accept: {e}");
                    continue;
                }
                Some(Err(e)) => {
                    if self.accept_paused.contains(&true) {
                        log::debug!("accept failed again: {e}");
                    } else {
                        log::warn!(
                            "accept failed: {e}; retrying as sockets close and every second \
                             (raise the open-files limit, e.g. LimitNOFILE=)"
                        );
                    }
                    self.accept_paused[i] = true;
                    return;
                }
                None => return,
            };
            self.counters.accepted += 1;
            if self.conns.len() >= socket_capacity(&self.config) {
                log::debug!("{peer}: too many sockets, dropped");
                continue;
            }
            let entry = self.conns.vacant_entry();
            let k = entry.key();
            self.next_serial += 1;
            // A small spare only: a slow-loris client holds it for
            // seconds. It becomes the `101` answer's buffer and goes back
            // to the pool once that is written.
            let buf = self.pool.take_small(MAX_REQUEST_BYTES);
            let deadline = now + self.config.request_timeout.as_millis() as u64;
            let registry = self.poll.registry();
            let tls = tls.then(|| self.tls.as_ref().map(|t| &t.config)).flatten();
            match Connection::accept(
                stream,
                peer,
                self.next_serial,
                tls,
                buf,
                deadline,
                registry,
                Token(k),
            ) {
                Ok(conn) => {
                    self.timers.watch(k, entry.insert(conn));
                }
                Err(e) => log::warn!("register failed: {e}"),
            }
        }
    }

    /// Retries every listener whose accept is paused.
    pub(super) fn retry_paused_accepts(&mut self, now: u64) {
        for i in 0..self.listeners.len() {
            if self.accept_paused[i] {
                self.accept(i, now);
            }
        }
    }

    /// The request head of connection `k` grew: answers or upgrades it
    /// once complete.
    pub(super) fn on_request_bytes(&mut self, k: usize, now: u64) {
        let Some(buf) = self.conns.get_mut(k).and_then(Connection::request_buf) else {
            return;
        };
        match parse_request(buf) {
            Ok(Parsed::Partial) => {}
            Ok(Parsed::Complete { request, len }) => {
                let head = std::mem::take(buf);
                self.on_request(k, request, head, len, now);
            }
            Err(e) => {
                log::debug!("{}: bad request: {e:?}", self.conns[k].peer());
                self.answer(k, http::malformed(e), now);
            }
        }
    }

    /// Answers or upgrades the request whose head is the first `len` bytes
    /// of `head` (the rest is already WebSocket data).
    fn on_request(&mut self, k: usize, req: Request, head: Vec<u8>, len: usize, now: u64) {
        let mut decision = http::route(&req, &self.config.routes, &self.config.allow_origins);
        if let Decision::Upgrade { protocol, accept } = &decision {
            decision = match self.admit(&req, *protocol, now) {
                Ok(_) if self.tokens.len() >= self.config.max_connections => http::over_capacity(),
                Ok(_) if !self.engine.accepting() => http::cluster_unavailable(),
                Ok(identity) => {
                    let accept = accept.clone();
                    return self.upgrade(k, req, *protocol, &accept, identity, head, len, now);
                }
                Err(refusal) => refusal,
            };
        }
        match decision {
            Decision::Refuse {
                status,
                upgrade: true,
                ..
            } => self.counters.reject(status),
            _ => self.counters.http_requests += 1,
        }
        let view = ServerView {
            stats: &self.engine.stats(),
            counters: &self.counters(),
            uptime_secs: self.clock.uptime_ms() / 1000,
        };
        let response = http::respond(&req, &decision, &self.config.allow_origins, &view);
        log::debug!("{} {}: {decision:?}", req.method, req.path);
        self.answer(k, response, now);
    }

    /// The identity an upgrade to `protocol` opens with (`None`:
    /// anonymous), or the refusal to answer: the token, where signed
    /// identities are on, is verified here (the engine gets the identity,
    /// never the token).
    fn admit(
        &mut self,
        req: &Request,
        protocol: Protocol,
        now: u64,
    ) -> Result<Option<Identity>, Decision> {
        let identity = match (&self.verifier, token_of(req)) {
            (None, _) => None,
            (Some(_), None) if self.config.auth.mode() == AuthMode::Optional => None,
            (Some(verifier), found) => {
                let token = found.map_or("", |(_, token)| token);
                match verifier.verify(token, now / 1000) {
                    Ok(identity) => Some(identity),
                    Err(refusal) => {
                        log::debug!("{}: token refused: {}", req.path, refusal.name());
                        self.counters.refuse_token(refusal);
                        return Err(http::refuse_token(refusal));
                    }
                }
            }
        };
        let sub = identity.as_ref().map(|i| i.sub.as_str());
        http::check_open(req, protocol, sub)?;
        Ok(identity)
    }

    /// Queues an HTTP answer; the socket closes once it is written.
    fn answer(&mut self, k: usize, response: Vec<u8>, now: u64) {
        let conn = &mut self.conns[k];
        if let Some(buf) = conn.answer(response, now + CLOSE_GRACE_MS) {
            self.pool.give(buf);
        }
        self.timers.watch(k, &self.conns[k]);
        self.mark_dirty(k);
    }

    /// Upgrades connection `k`; `head` is the request (its first `len`
    /// bytes), its buffer is reused for the `101` answer.
    #[allow(clippy::too_many_arguments)]
    fn upgrade(
        &mut self,
        k: usize,
        req: Request,
        protocol: Protocol,
        accept: &str,
        identity: Option<Identity>,
        mut head: Vec<u8>,
        len: usize,
        now: u64,
    ) {
        let id = ConnId(self.next_id);
        self.next_id += 1;
        let early = head.split_off(len.min(head.len()));
        head.clear();
        http::write_switching_protocols(&mut head, accept, selected_protocol(&req));
        let conn = &mut self.conns[k];
        conn.upgrade(id, Codec::new(&[], self.config.max_message_size, head));
        let peer = conn.peer();
        self.tokens.insert(id, k);
        self.mark_dirty(k);
        let sub = identity.as_ref().map(|i| i.sub.as_str());
        log::debug!("{peer}: {id:?} opened {} ({protocol}) as {sub:?}", req.path);
        self.feed(
            now,
            Input::Open {
                conn: id,
                protocol,
                path: req.path,
                query: without_token(&req.query).into_owned(),
                peer: Some(peer),
                identity,
            },
        );
        if !early.is_empty() {
            self.on_ws_bytes(k, &early, now);
        }
    }
}
