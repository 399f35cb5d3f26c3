//! A `presence` route's state: online users and their connections.

use super::ordered::OrderedMap;
use super::outbox::Cx;
use super::timers::deadline;
use super::{ConnId, ConnMap, EngineConfig};
use crate::protocol::Encode;
use crate::protocol::close::CloseReason;
use crate::protocol::presence::{
    Command, Message, UserId, UserIdError, decode, user_id_from_query,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// One connection: its user and its `connectionId`.
#[derive(Debug, Serialize, Deserialize)]
struct Conn {
    user: String,
    connection_id: String,
}

/// The online users of one `presence` route.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct PresenceRoute {
    conns: ConnMap<Conn>,
    /// Online users in the order they came online, with their connections.
    users: OrderedMap<String, Vec<ConnId>>,
    /// The `connectionId`s in use.
    connection_ids: HashSet<String>,
    /// When the next `stats:` line is due (while there are connections):
    /// one interval after the first connection, then every interval.
    /// Saved with the route, so a live upgrade keeps the schedule; a
    /// cluster node loading another's replica takes that node's (a log
    /// line's timing, no output).
    next_stats_ms: u64,
}

impl PresenceRoute {
    /// A connection opened with `query`: greets it and, if its user just
    /// came online, tells every other user. Its user is its identity's
    /// `sub` if it has one, else its `userId`. Refuses a query without a
    /// valid `userId` (optional with an identity), or with one that is not
    /// the identity's `sub`.
    pub fn open(&mut self, conn: ConnId, query: &str, cx: &mut Cx<'_>) -> Result<(), CloseReason> {
        let user = user_of_open(query, cx)?;
        let base = format!("{user}-{}", cx.now);
        let mut connection_id = base.clone();
        let mut n = 2;
        while self.connection_ids.contains(&connection_id) {
            connection_id = format!("{base}-{n}");
            n += 1;
        }
        let ts = cx.ts().to_owned();
        let hello = Message::ConnectionEstablished {
            user_id: UserId(&user),
            timestamp: &ts,
            connection_id: &connection_id,
        };
        cx.send(conn, hello.encode());
        let first = match self.users.get_mut(&*user) {
            Some(conns) => {
                conns.push(conn);
                false
            }
            None => {
                self.users.insert(user.clone(), vec![conn]);
                cx.stats().users += 1;
                true
            }
        };
        let online: Vec<UserId<'_>> = self.users.keys().map(|u| UserId(u)).collect();
        cx.send(
            conn,
            Message::OnlineUsers {
                user_ids: &online,
                timestamp: &ts,
            }
            .encode(),
        );
        if first {
            let notice = Message::UserOnline {
                user_id: UserId(&user),
                timestamp: &ts,
            };
            cx.broadcast(self.conns_except(&user), notice.encode());
        }
        self.connection_ids.insert(connection_id.clone());
        if self.conns.is_empty() {
            let interval = cx.config.presence_stats_interval_ms;
            self.next_stats_ms = deadline(cx.config, cx.now, interval);
        }
        self.conns.insert(
            conn,
            Conn {
                user,
                connection_id,
            },
        );
        Ok(())
    }

    /// One text message from `conn`: only `PING` is known.
    pub fn text(&mut self, conn: ConnId, text: &str, cx: &mut Cx<'_>) {
        match decode(text) {
            Ok(Command::Ping) => {
                let pong = Message::Pong { timestamp: cx.ts() }.encode();
                cx.send(conn, pong);
            }
            Err(e) => send_error(conn, &e.to_string(), cx),
        }
    }

    /// The connection is gone; if it was its user's last, the user goes
    /// offline and every other user is told.
    pub fn close(&mut self, conn: ConnId, cx: &mut Cx<'_>) {
        let Some(Conn {
            user,
            connection_id,
        }) = self.conns.remove(&conn)
        else {
            return;
        };
        self.connection_ids.remove(&connection_id);
        let Some(conns) = self.users.get_mut(&*user) else {
            return;
        };
        conns.retain(|&c| c != conn);
        if conns.is_empty() {
            self.users.remove(&*user);
            cx.stats().users -= 1;
            let notice = Message::UserOffline {
                user_id: UserId(&user),
                timestamp: cx.ts(),
            };
            let text = notice.encode();
            cx.broadcast(self.conns_except(&user), text);
        }
    }

    /// The user of `conn`.
    pub fn user_of(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn).map(|c| c.user.as_str())
    }

    /// Every connection of every user but `user`.
    fn conns_except<'a>(&'a self, user: &'a str) -> impl Iterator<Item = ConnId> + 'a {
        self.users
            .iter()
            .filter(move |(u, _)| *u != user)
            .flat_map(|(_, c)| c.iter().copied())
    }

    /// When the next `stats:` line is due: never without connections or
    /// with the interval 0.
    pub fn next_stats(&self, config: &EngineConfig) -> Option<u64> {
        let on = config.presence_stats_interval_ms > 0 && !self.conns.is_empty();
        on.then_some(self.next_stats_ms)
    }

    /// Logs `stats: N users, M connections` when due (the same numbers as
    /// [`Self::user_count`] and [`Self::conn_count`], which
    /// [`super::Engine::stats`] reports).
    pub fn timeout(&mut self, path: &str, config: &EngineConfig, now_ms: u64) {
        if self.next_stats(config).is_some_and(|due| due <= now_ms) {
            log::info!(
                "{path}: stats: {} users, {} connections",
                self.user_count(),
                self.conn_count()
            );
            let interval = config.presence_stats_interval_ms;
            self.next_stats_ms = deadline(config, now_ms, interval);
        }
    }

    /// Number of connections.
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Number of online users.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Whether `conn` is on this route.
    pub fn has_conn(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// A user's connections, in opening order.
    pub fn members(&self, user: &str) -> Option<Vec<ConnId>> {
        self.users.get(user).cloned()
    }

    /// The online users, in the order they came online.
    pub fn online_users(&self) -> Vec<String> {
        self.users.keys().cloned().collect()
    }

    /// Checks that connections, users and connection IDs agree.
    pub fn check(&self) -> Result<(), String> {
        self.users.check()?;
        let mut listed = 0;
        for (user, conns) in self.users.iter() {
            if conns.is_empty() {
                return Err(format!("presence: user {user} has no connection"));
            }
            for conn in conns {
                if self.conns.get(conn).map(|c| &c.user) != Some(user) {
                    return Err(format!("presence: {conn:?} listed under {user} wrongly"));
                }
            }
            listed += conns.len();
        }
        if listed != self.conns.len() || self.connection_ids.len() != self.conns.len() {
            return Err(format!(
                "presence: {} conns, {listed} listed, {} connection ids",
                self.conns.len(),
                self.connection_ids.len()
            ));
        }
        if let Some(c) = self
            .conns
            .values()
            .find(|c| !self.connection_ids.contains(&c.connection_id))
        {
            return Err(format!(
                "presence: connection id {} not registered",
                c.connection_id
            ));
        }
        Ok(())
    }
}

/// The user of a connection opening with `query`: see
/// [`PresenceRoute::open`].
fn user_of_open(query: &str, cx: &Cx<'_>) -> Result<String, CloseReason> {
    let asked = user_id_from_query(query);
    let Some(identity) = cx.identity else {
        return asked.map_err(CloseReason::InvalidUserId);
    };
    match asked {
        Err(UserIdError::Missing) => Ok(identity.sub.clone()),
        Err(e) => Err(CloseReason::InvalidUserId(e)),
        Ok(user) if user == identity.sub => Ok(user),
        Ok(_) => Err(CloseReason::UserIdNotSubject),
    }
}

/// Sends this protocol's error message.
pub(crate) fn send_error(conn: ConnId, message: &str, cx: &mut Cx<'_>) {
    cx.send_error(conn, Message::Error { message }.encode());
}
