//! Signed identities, the engine's part (SECURITY.md "Signed identities"):
//! the identity an open brings, the in-band `auth` that refreshes it, and
//! the expiry that closes a connection whose token ran out.
//!
//! The server layer verifies every token and hands the engine only the
//! result ([`Input::Open`](super::Input::Open)'s `identity`,
//! [`Input::Auth`](super::Input::Auth)); the engine times the expiry from
//! `now`, so the journal replays without keys.

use super::expiry::close_at;
use super::outbox::Cx;
use super::{ConnId, Engine};
use crate::protocol::Protocol;
use crate::protocol::auth::token_refused;
use crate::protocol::chat::{self, AUTHENTICATED};
use crate::protocol::close::CloseReason;
use crate::protocol::token::{Identity, Refusal};
use serde::{Deserialize, Serialize};

/// Signed identities are on ([`super::EngineConfig::auth`] is `Some`).
///
/// - **Open.** A connection opened with an identity is that identity
///   until its token expires: presence's user is its `sub` (`?userId=`
///   optional, and closed with `UserIdNotSubject` if it names another);
///   stream's `join-room` must name `sub` as `userId` (else the error
///   `userId does not match token`); its `rooms` claim limits the stream
///   rooms, scratch sessions and signal rooms it may create or join (else
///   `Not allowed in room R`, and nothing changes). A `signal`
///   `create-room` makes a room whose id is random: it is allowed only if
///   the claim allows every id (holds `*`), else refused as
///   `Not allowed in room *`. Without an identity a connection is
///   anonymous and behaves as without auth.
/// - **Expiry.** At `exp` plus [`Self::grace_ms`] (rounded up to the timer
///   granule) the connection is closed with 4401 `token expired`, unless
///   a fresh token came first.
/// - **In-band `auth`.** A valid token for the connection's subject (its
///   `sub`, or for an anonymous presence connection its `userId`) becomes
///   its identity: the expiry moves to the new `exp`, the new `rooms`
///   claim governs later joins (rooms already joined are kept). An
///   anonymous connection thus becomes identified. A valid token for
///   another subject closes it at once with 4403 `token subject changed`.
///   A refused token changes nothing. Answers: chat replies in the seed's
///   shape, `payload.success` true with `Authenticated`, or false with
///   `token refused: NAME` (the [`Refusal::name`]); the other protocols
///   answer a refusal with their error message of the same text and a
///   success with nothing (their clients know no `auth` reply). A chat
///   `auth` that reaches the engine as text carried no token: it is
///   answered as refused, `missing`.
/// - An `auth` counts as an inbound message (heard, counted, rate
///   limited; its length is not known to the engine).
///
/// With `None`, identities in opens are ignored (with a `debug!`), `auth`
/// inputs too, and everything is as without auth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthPolicy {
    /// How long after its token's `exp` a connection may still send a
    /// fresh one, in milliseconds (`--auth-grace`: the server holds the
    /// default, 30 s).
    pub grace_ms: u64,
}

/// A connection's identity and when it is closed for expiry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ConnAuth {
    /// The verified identity.
    pub identity: Identity,
    /// When the connection is closed with 4401, the key of its entry in
    /// the engine's expiries.
    pub close_at: u64,
}

impl Engine {
    /// The identity an open brings, with its expiry (not yet scheduled:
    /// see [`Self::schedule_expiry`]); `None` when anonymous or auth off.
    pub(super) fn identity_of_open(
        &self,
        conn: ConnId,
        identity: Option<Identity>,
    ) -> Option<ConnAuth> {
        let identity = identity?;
        let Some(policy) = self.config.auth else {
            log::debug!("{conn:?}: identity ignored, auth is off");
            return None;
        };
        let close_at = close_at(&self.config, policy, identity.exp);
        Some(ConnAuth { identity, close_at })
    }

    /// Puts an open connection's expiry, if it has an identity, among the
    /// timers.
    pub(super) fn schedule_expiry(&mut self, conn: ConnId) {
        if let Some(auth) = self.conns.get(&conn).and_then(|c| c.auth.as_ref()) {
            self.expiries.insert(auth.close_at, conn);
        }
    }

    /// An in-band `auth` (see [`AuthPolicy`]).
    pub(super) fn auth(&mut self, now: u64, conn: ConnId, result: Result<Identity, Refusal>) {
        let Some(policy) = self.config.auth else {
            log::debug!("{conn:?}: auth ignored, auth is off");
            return;
        };
        if !self.admit(now, conn, 0, "auth") {
            return;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let identity = match result {
            Ok(identity) => identity,
            Err(refusal) => {
                log::debug!("{conn:?}: in-band token refused: {refusal}");
                return self.answer_auth(now, conn, Err(refusal));
            }
        };
        let subject = match &c.auth {
            Some(auth) => Some(auth.identity.sub.as_str()),
            None => self.routes[c.route].subject_of(super::cluster::global(self.out.node, conn)),
        };
        if subject.is_some_and(|s| s != identity.sub) {
            log::debug!("{conn:?}: in-band token for another subject");
            return self.close(now, conn, CloseReason::SubjectChanged);
        }
        if let Some(old) = c.auth.take() {
            self.expiries.remove(old.close_at, conn);
        }
        let close_at = close_at(&self.config, policy, identity.exp);
        self.expiries.insert(close_at, conn);
        c.auth = Some(ConnAuth {
            identity: identity.clone(),
            close_at,
        });
        if self.cluster.is_some() {
            let conn = super::cluster::global(self.out.node, conn);
            self.publish(None, super::cluster::Event::Identity { conn, identity });
        }
        self.answer_auth(now, conn, Ok(()));
    }

    /// Answers an in-band `auth` (see [`AuthPolicy`]).
    fn answer_auth(&mut self, now: u64, conn: ConnId, result: Result<(), Refusal>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let route = &self.routes[c.route];
        let conn = super::cluster::global(self.out.node, conn);
        let mut cx = Cx::new(&mut self.out, &mut self.rng, &self.config, now, c.protocol);
        match (c.protocol, result) {
            (Protocol::Chat, result) => chat_auth_reply(conn, result, &mut cx),
            (_, Ok(())) => {}
            (_, Err(refusal)) => route.send_error(conn, &token_refused(refusal), &mut cx),
        }
    }

    /// Closes, with 4401, every connection whose token expired more than
    /// the grace period ago by `now`.
    pub(super) fn expire(&mut self, now: u64) {
        while let Some(conn) = self.expiries.pop_due(now) {
            log::debug!("{conn:?}: token expired");
            self.close(now, conn, CloseReason::TokenExpired);
        }
    }
}

/// Sends chat's `auth` reply: `payload.success` and `payload.message`
/// (a refusal is counted as an error sent).
pub(crate) fn chat_auth_reply(conn: ConnId, result: Result<(), Refusal>, cx: &mut Cx<'_>) {
    match result {
        Ok(()) => {
            let text = chat::auth_reply(true, AUTHENTICATED, cx.ts());
            cx.send(conn, text);
        }
        Err(refusal) => {
            let text = chat::auth_reply(false, &token_refused(refusal), cx.ts());
            cx.send_error(conn, text);
        }
    }
}
