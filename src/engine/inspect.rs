//! Read-only introspection for tests, the fuzz harness and the server.
//!
//! Each method costs at most O(size of what it returns), except
//! [`Engine::check_invariants`], which walks every structure.

use super::{ConnId, Engine};
use crate::protocol::Protocol;

impl Engine {
    /// The members of a room on the route `path`, in joining order:
    /// a scratch session's connections, a signal room's host then guest,
    /// a stream room's participants' connections, a presence user's
    /// connections (`room` is the `userId`), or every connection of a chat
    /// route (`room` ignored). `None` if no such route or room.
    pub fn members(&self, path: &str, room: &str) -> Option<Vec<ConnId>> {
        self.route(path)?.members(room)
    }

    /// The online users of a presence route, in the order they came online
    /// (empty for other protocols or an unknown path).
    pub fn online_users(&self, path: &str) -> Vec<String> {
        self.route(path)
            .map(|r| r.online_users())
            .unwrap_or_default()
    }

    /// Open connections on every route.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Live rooms on every route (scratch sessions, signal and stream rooms).
    pub fn room_count(&self) -> usize {
        self.routes.iter().map(|r| r.room_count()).sum()
    }

    /// The protocol of an open connection.
    pub fn protocol_of(&self, conn: ConnId) -> Option<Protocol> {
        self.conns.get(&conn).map(|c| c.protocol)
    }

    /// The route path of an open connection.
    pub fn path_of(&self, conn: ConnId) -> Option<&str> {
        let c = self.conns.get(&conn)?;
        Some(&self.routes[c.route].path)
    }

    /// Verifies that every internal cross-index agrees: each connection's
    /// memberships against each room's members, per-route connection sets
    /// against the engine's, and the live counters against the structures.
    /// O(total state); meant for tests and fuzzing.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut per_route = vec![0usize; self.routes.len()];
        let mut conns = [0u64; 5];
        let mut identified = 0;
        for (id, c) in &self.conns {
            if let Some(auth) = &c.auth {
                if !self.expiries.contains(auth.close_at, *id) {
                    return Err(format!("{id:?}: expiry not scheduled"));
                }
                identified += 1;
            }
            let route = self
                .routes
                .get(c.route)
                .ok_or(format!("{id:?}: no route"))?;
            // In cluster mode the replica holds a connection once its open
            // has come back from Redis: checked against the members below.
            let registered = self.cluster.is_some() || route.has_conn(*id);
            if route.protocol != c.protocol || !registered {
                return Err(format!("{id:?} not registered on {}", route.path));
            }
            per_route[c.route] += 1;
            conns[c.protocol.index()] += 1;
        }
        if let Some(cluster) = self.cluster.as_deref() {
            per_route.iter_mut().for_each(|n| *n = 0);
            for (id, m) in &cluster.members {
                let route = self
                    .routes
                    .get(m.route)
                    .ok_or(format!("member {id:?}: no route"))?;
                if !route.has_conn(*id) {
                    return Err(format!("member {id:?} not registered on {}", route.path));
                }
                per_route[m.route] += 1;
            }
        }
        if self.expiries.len() != identified {
            return Err(format!(
                "{} expiries for {identified} identified connections",
                self.expiries.len()
            ));
        }
        let (mut rooms, mut users) = ([0u64; 5], [0u64; 5]);
        for (i, route) in self.routes.iter().enumerate() {
            route.check(self.config.max_rooms_per_conn)?;
            if route.conn_count() != per_route[i] {
                return Err(format!(
                    "{}: {} conns, engine has {}",
                    route.path,
                    route.conn_count(),
                    per_route[i]
                ));
            }
            if self.route_index.get(&route.path) != Some(&i) {
                return Err(format!("{}: not indexed", route.path));
            }
            rooms[route.protocol.index()] += route.room_count() as u64;
            users[route.protocol.index()] += route.online_users().len() as u64;
        }
        for p in Protocol::ALL {
            let s = &self.out.per_protocol[p.index()];
            let i = p.index();
            if (s.connections, s.rooms, s.users) != (conns[i], rooms[i], users[i]) {
                return Err(format!(
                    "{p}: counters {}/{}/{} but structures {}/{}/{}",
                    s.connections, s.rooms, s.users, conns[i], rooms[i], users[i]
                ));
            }
        }
        Ok(())
    }

    fn route(&self, path: &str) -> Option<&super::route::Route> {
        self.routes.get(*self.route_index.get(path)?)
    }
}
