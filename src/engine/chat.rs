//! A `chat` route's state: every connection is in one broadcast group.

use super::ConnId;
use super::auth::chat_auth_reply;
use super::ordered::OrderedMap;
use super::outbox::Cx;
use crate::protocol::chat::{self, Command, INVALID_FORMAT, decode};
use crate::protocol::token::Refusal;
use serde::{Deserialize, Serialize};

/// The connections of one `chat` route, in opening order.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct ChatRoute {
    conns: OrderedMap<ConnId, ()>,
}

impl ChatRoute {
    /// A connection opened: it gets the welcome.
    pub fn open(&mut self, conn: ConnId, cx: &mut Cx<'_>) {
        self.conns.insert(conn, ());
        let welcome = chat::welcome(cx.ts());
        cx.send(conn, welcome);
    }

    /// One text message from `conn`.
    pub fn text(&mut self, conn: ConnId, text: &str, cx: &mut Cx<'_>) {
        let Ok(cmd) = decode(text) else {
            return send_error(conn, INVALID_FORMAT, cx);
        };
        if matches!(cmd, Command::Auth) && cx.config.auth.is_some() {
            // With auth on, a token comes as `Input::Auth`: this one had none.
            return chat_auth_reply(conn, Err(Refusal::Missing), cx);
        }
        let ts = cx.ts();
        let reply = match &cmd {
            Command::Ping => chat::pong(ts),
            Command::Auth => chat::auth_ok(ts),
            Command::Echo { ty, payload } => chat::with_payload(ty, *payload, ts),
            Command::Chat { payload } => {
                let msg = chat::with_payload("chat", *payload, ts);
                return cx.broadcast(self.conns.keys().copied(), msg);
            }
        };
        cx.send(conn, reply);
    }

    /// The connection is gone.
    pub fn close(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    /// Number of connections.
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Whether `conn` is on this route.
    pub fn has_conn(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// Every connection, in opening order.
    pub fn members(&self) -> Vec<ConnId> {
        self.conns.keys().copied().collect()
    }

    /// Checks the connection list.
    pub fn check(&self) -> Result<(), String> {
        self.conns.check()
    }
}

/// Sends this protocol's error message.
pub(crate) fn send_error(conn: ConnId, message: &str, cx: &mut Cx<'_>) {
    let text = chat::error(message, cx.ts());
    cx.send_error(conn, text);
}
