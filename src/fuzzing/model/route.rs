//! One route's reference state: who is in which session, room or user,
//! in the order PROTOCOLS.md says the engine lists them.

use crate::engine::ConnId;
use crate::protocol::Protocol;
use std::collections::{BTreeMap, BTreeSet};

/// A `signal` room: its host and guest.
pub type Seats = (ConnId, Option<ConnId>);

/// One route as the model knows it. Only the fields of its protocol are
/// ever filled.
#[derive(Clone, Debug)]
pub struct RouteModel {
    /// Its path.
    pub path: &'static str,
    /// Its protocol.
    pub protocol: Protocol,
    /// Whether any connection ever opened on it (the engine then knows it).
    pub used: bool,
    /// Open connections, in opening order (a `chat` route's members).
    pub conns: Vec<ConnId>,
    /// `scratch`: sessions and their members, in joining order.
    pub sessions: BTreeMap<String, Vec<ConnId>>,
    /// `signal`: every room ever created, in creation order (`None` once
    /// deleted).
    pub signal: Vec<Option<Seats>>,
    /// `stream`: rooms and their `(userId, connection)` participants, in
    /// joining order.
    pub stream: BTreeMap<String, Vec<(String, ConnId)>>,
    /// `presence`: online users in the order they came online, each with
    /// its connections in opening order.
    pub users: Vec<(String, Vec<ConnId>)>,
}

/// A room as an output names it.
#[derive(Clone, Copy, Debug)]
pub enum RoomKey<'a> {
    /// A session, `stream` room or presence user by name.
    Name(&'a str),
    /// The `n`th created `signal` room.
    Signal(usize),
}

impl RouteModel {
    /// An empty route.
    pub fn new(path: &'static str, protocol: Protocol) -> Self {
        RouteModel {
            path,
            protocol,
            used: false,
            conns: Vec::new(),
            sessions: BTreeMap::new(),
            signal: Vec::new(),
            stream: BTreeMap::new(),
            users: Vec::new(),
        }
    }

    /// `conn` opens (as `user`, on presence); returns who hears of it.
    pub fn open(&mut self, conn: ConnId, user: Option<&str>) -> BTreeSet<ConnId> {
        self.conns.push(conn);
        let Some(user) = user.filter(|_| self.protocol == Protocol::Presence) else {
            return BTreeSet::from([conn]);
        };
        match self.users.iter_mut().find(|(u, _)| u == user) {
            Some((_, conns)) => {
                conns.push(conn);
                BTreeSet::from([conn])
            }
            None => {
                self.users.push((user.to_string(), vec![conn]));
                self.conns.iter().copied().collect()
            }
        }
    }

    /// The members of a room (empty if there is no such room).
    pub fn members(&self, room: RoomKey<'_>) -> Vec<ConnId> {
        match (self.protocol, room) {
            (Protocol::Signal, RoomKey::Signal(n)) => match self.signal.get(n) {
                Some(Some((host, guest))) => std::iter::once(*host).chain(*guest).collect(),
                _ => Vec::new(),
            },
            (Protocol::Scratch, RoomKey::Name(s)) => {
                self.sessions.get(s).cloned().unwrap_or_default()
            }
            (Protocol::Stream, RoomKey::Name(r)) => self
                .stream
                .get(r)
                .map_or(Vec::new(), |m| m.iter().map(|(_, c)| *c).collect()),
            (Protocol::Presence, RoomKey::Name(u)) => self
                .users
                .iter()
                .find(|(user, _)| user == u)
                .map_or(Vec::new(), |(_, conns)| conns.clone()),
            (Protocol::Chat, _) => self.conns.clone(),
            _ => Vec::new(),
        }
    }

    /// The session `conn` is in.
    pub fn session_of(&self, conn: ConnId) -> Option<String> {
        let mut sessions = self.sessions.iter();
        sessions
            .find(|(_, m)| m.contains(&conn))
            .map(|(s, _)| s.clone())
    }

    /// The `stream` rooms and `signal` rooms `conn` is in.
    pub fn rooms_of(&self, conn: ConnId) -> usize {
        let signal = self.signal.iter().flatten();
        let hosted = signal.filter(|(h, g)| *h == conn || *g == Some(conn));
        let streams = self.stream.values();
        hosted.count()
            + streams
                .filter(|m| m.iter().any(|(_, c)| *c == conn))
                .count()
    }

    /// `conn`'s own memberships: its session (with no user), or its
    /// `stream` rooms and the `userId` it joined each as.
    pub fn own(&self, conn: ConnId) -> Vec<(String, String)> {
        let session = self.session_of(conn).map(|s| (s, String::new()));
        let rooms = self.stream.iter().filter_map(|(room, members)| {
            let (user, _) = members.iter().find(|(_, c)| *c == conn)?;
            Some((room.clone(), user.clone()))
        });
        session.into_iter().chain(rooms).collect()
    }

    /// The `userId` `conn` joined `stream` room `room` as.
    pub fn participant(&self, conn: ConnId, room: &str) -> Option<&str> {
        let members = self.stream.get(room)?;
        let (user, _) = members.iter().find(|(_, c)| *c == conn)?;
        Some(user)
    }

    /// `conn` leaves its session, if any; returns the members before.
    pub fn leave_session(&mut self, conn: ConnId) -> Vec<ConnId> {
        let Some(session) = self.session_of(conn) else {
            return Vec::new();
        };
        let members = self.sessions.remove(&session).unwrap_or_default();
        let rest: Vec<ConnId> = members.iter().copied().filter(|c| *c != conn).collect();
        if !rest.is_empty() {
            self.sessions.insert(session, rest);
        }
        members
    }

    /// `conn` leaves `stream` room `room`; returns the members before, or
    /// `None` if it was not in it.
    pub fn leave_stream(&mut self, conn: ConnId, room: &str) -> Option<Vec<ConnId>> {
        self.participant(conn, room)?;
        let members = self.stream.remove(room).unwrap_or_default();
        let before = members.iter().map(|(_, c)| *c).collect();
        let rest: Vec<_> = members.into_iter().filter(|(_, c)| *c != conn).collect();
        if !rest.is_empty() {
            self.stream.insert(room.to_string(), rest);
        }
        Some(before)
    }

    /// Who may hear of `conn` leaving everything: its session, its rooms'
    /// peers, and on presence every connection if it is its user's last.
    pub fn peers(&self, conn: ConnId) -> BTreeSet<ConnId> {
        let mut out = BTreeSet::new();
        for m in self.sessions.values().filter(|m| m.contains(&conn)) {
            out.extend(m);
        }
        for (h, g) in self.signal.iter().flatten() {
            if *h == conn || *g == Some(conn) {
                out.insert(*h);
                out.extend(*g);
            }
        }
        for m in self.stream.values() {
            if m.iter().any(|(_, c)| *c == conn) {
                out.extend(m.iter().map(|(_, c)| *c));
            }
        }
        if self.users.iter().any(|(_, cs)| cs == &[conn]) {
            out.extend(&self.conns);
        }
        out
    }

    /// `conn` is gone: it leaves everything. Returns who may hear of it.
    pub fn close(&mut self, conn: ConnId) -> BTreeSet<ConnId> {
        let peers = self.peers(conn);
        self.conns.retain(|c| *c != conn);
        self.leave_session(conn);
        for seats in &mut self.signal {
            if seats.is_some_and(|(h, g)| h == conn || g == Some(conn)) {
                *seats = None;
            }
        }
        let rooms: Vec<String> = self.stream.keys().cloned().collect();
        for room in rooms {
            self.leave_stream(conn, &room);
        }
        for (_, conns) in &mut self.users {
            conns.retain(|c| *c != conn);
        }
        self.users.retain(|(_, conns)| !conns.is_empty());
        peers
    }

    /// Live rooms: sessions, `signal` and `stream` rooms.
    pub fn room_count(&self) -> usize {
        self.sessions.len() + self.signal.iter().flatten().count() + self.stream.len()
    }
}
