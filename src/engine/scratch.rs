//! A `scratch` route's state: sessions of users.

use super::ordered::OrderedMap;
use super::outbox::Cx;
use super::{ConnId, ConnMap};
use crate::protocol::Encode;
use crate::protocol::scratch::{Command, Message, decode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One connection: its random user ID and its session, if any.
#[derive(Debug, Serialize, Deserialize)]
struct User {
    id: String,
    session: Option<String>,
}

/// The sessions of one `scratch` route.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct ScratchRoute {
    users: ConnMap<User>,
    /// Each session's members and their user IDs, in joining order.
    sessions: HashMap<String, OrderedMap<ConnId, String>>,
}

impl ScratchRoute {
    /// A connection opened: it gets `u-` and 16 random hex digits.
    pub fn open(&mut self, conn: ConnId, cx: &mut Cx<'_>) {
        let id = format!("u-{:016x}", cx.rng.next_u64());
        self.users.insert(conn, User { id, session: None });
    }

    /// One text message from `conn`.
    pub fn text(&mut self, conn: ConnId, text: &str, cx: &mut Cx<'_>) {
        let Some(user) = self.users.get(&conn) else {
            return;
        };
        match decode(text) {
            Err(e) => cx.error(conn, &e.to_string()),
            Ok(Command::Join { session_id }) => {
                if !cx.may_enter(conn, &session_id) {
                    return;
                }
                self.leave(conn, true, cx);
                self.join(conn, &session_id, cx);
            }
            Ok(Command::Sync {
                session_id,
                changes,
            }) => {
                if user.session.as_deref() != Some(&*session_id) {
                    return cx.error(conn, &format!("Not in session {session_id}"));
                }
                let Some(members) = self.sessions.get(&*session_id) else {
                    return;
                };
                let msg = Message::Sync {
                    session_id: &session_id,
                    user_id: &user.id,
                    changes,
                };
                cx.broadcast(members.keys().copied().filter(|&c| c != conn), msg.encode());
            }
            Ok(Command::Leave) => {
                if !self.leave(conn, true, cx) {
                    cx.error(conn, "Not in a session");
                }
            }
        }
    }

    /// The connection is gone: it leaves its session.
    pub fn close(&mut self, conn: ConnId, cx: &mut Cx<'_>) {
        self.leave(conn, false, cx);
        self.users.remove(&conn);
    }

    fn join(&mut self, conn: ConnId, session_id: &str, cx: &mut Cx<'_>) {
        let Some(user) = self.users.get_mut(&conn) else {
            return;
        };
        let members = self
            .sessions
            .entry(session_id.to_owned())
            .or_insert_with(|| {
                cx.stats().rooms += 1;
                OrderedMap::default()
            });
        let others: Vec<&str> = members.values().map(String::as_str).collect();
        let reply = Message::Joined {
            session_id,
            user_id: &user.id,
            users: &others,
        };
        cx.send(conn, reply.encode());
        let notice = Message::UserJoined {
            session_id,
            user_id: &user.id,
        };
        cx.broadcast(members.keys().copied(), notice.encode());
        members.insert(conn, user.id.clone());
        user.session = Some(session_id.to_owned());
    }

    /// Leaves the current session; `false` if in none.
    fn leave(&mut self, conn: ConnId, reply: bool, cx: &mut Cx<'_>) -> bool {
        let Some(user) = self.users.get_mut(&conn) else {
            return false;
        };
        let Some(session_id) = user.session.take() else {
            return false;
        };
        if reply {
            cx.send(
                conn,
                Message::Left {
                    session_id: &session_id,
                }
                .encode(),
            );
        }
        let Some(members) = self.sessions.get_mut(&session_id) else {
            return true;
        };
        members.remove(&conn);
        let notice = Message::UserLeft {
            session_id: &session_id,
            user_id: &user.id,
        };
        cx.broadcast(members.keys().copied(), notice.encode());
        if members.is_empty() {
            self.sessions.remove(&session_id);
            cx.stats().rooms -= 1;
        }
        true
    }

    /// Number of live sessions.
    pub fn room_count(&self) -> usize {
        self.sessions.len()
    }

    /// Number of connections.
    pub fn conn_count(&self) -> usize {
        self.users.len()
    }

    /// Whether `conn` is on this route.
    pub fn has_conn(&self, conn: ConnId) -> bool {
        self.users.contains_key(&conn)
    }

    /// The members of a session, in joining order.
    pub fn members(&self, session_id: &str) -> Option<Vec<ConnId>> {
        Some(self.sessions.get(session_id)?.keys().copied().collect())
    }

    /// Checks that users and sessions agree.
    pub fn check(&self) -> Result<(), String> {
        let mut in_sessions = 0;
        for (session_id, members) in &self.sessions {
            members.check()?;
            if members.is_empty() {
                return Err(format!("scratch: empty session {session_id}"));
            }
            in_sessions += members.len();
            for (conn, id) in members.iter() {
                let user = self
                    .users
                    .get(conn)
                    .ok_or(format!("scratch: {conn:?} unknown"))?;
                if user.session.as_deref() != Some(session_id) || &user.id != id {
                    return Err(format!("scratch: {conn:?} listed in {session_id} wrongly"));
                }
            }
        }
        let with_session = self.users.values().filter(|u| u.session.is_some()).count();
        if with_session != in_sessions {
            return Err(format!(
                "scratch: {with_session} users in sessions, {in_sessions} listed"
            ));
        }
        Ok(())
    }
}
