//! A `signal` route's state: two-peer rooms with random 6-digit IDs.

use super::outbox::Cx;
use super::{ConnId, ConnMap};
use crate::protocol::Encode;
use crate::protocol::signal::{Command, Message, decode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Attempts at drawing a free room ID before giving up.
const ID_ATTEMPTS: usize = 1000;

/// A room: its creator and at most one guest.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Room {
    host: ConnId,
    guest: Option<ConnId>,
}

impl Room {
    /// The peer of `conn`, if `conn` is a member: `Some(None)` when the
    /// other seat is empty.
    fn peer_of(&self, conn: ConnId) -> Option<Option<ConnId>> {
        if conn == self.host {
            Some(self.guest)
        } else if Some(conn) == self.guest {
            Some(Some(self.host))
        } else {
            None
        }
    }
}

/// The rooms of one `signal` route.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct SignalRoute {
    /// Each connection's rooms (hosted or joined), in order.
    conns: ConnMap<Vec<String>>,
    rooms: HashMap<String, Room>,
}

impl SignalRoute {
    /// A connection opened.
    pub fn open(&mut self, conn: ConnId) {
        self.conns.insert(conn, Vec::new());
    }

    /// One text message from `conn`.
    pub fn text(&mut self, conn: ConnId, text: &str, cx: &mut Cx<'_>) {
        let Some(mine) = self.conns.get_mut(&conn) else {
            return;
        };
        match decode(text) {
            Err(e) => cx.error(conn, &e.to_string()),
            Ok(Command::CreateRoom) => {
                if !cx.may_create_any(conn) {
                    return;
                }
                if mine.len() >= cx.config.max_rooms_per_conn {
                    return cx.error(conn, "Room limit reached");
                }
                let Some(room_id) = fresh_id(&self.rooms, cx) else {
                    return cx.error(conn, "No room ID available");
                };
                self.rooms.insert(
                    room_id.clone(),
                    Room {
                        host: conn,
                        guest: None,
                    },
                );
                cx.stats().rooms += 1;
                cx.send(conn, Message::RoomCreated { room_id: &room_id }.encode());
                mine.push(room_id);
            }
            Ok(Command::JoinRoom { room_id }) => {
                if !cx.may_enter(conn, &room_id) {
                    return;
                }
                let room = match self.rooms.get_mut(&*room_id) {
                    Some(room) if room.guest.is_none() && room.host != conn => room,
                    _ => return cx.error(conn, "Room not found or full"),
                };
                if mine.len() >= cx.config.max_rooms_per_conn {
                    return cx.error(conn, "Room limit reached");
                }
                room.guest = Some(conn);
                mine.push(room_id.to_string());
                let notice = Message::PeerJoined { room_id: &room_id }.encode();
                cx.broadcast([room.host, conn], notice);
            }
            Ok(Command::Relay { room_id }) => match self.rooms.get(&*room_id) {
                None => cx.error(conn, "Room not found"),
                Some(room) => match room.peer_of(conn) {
                    None => cx.error(conn, "Not a member of this room"),
                    Some(None) => cx.error(conn, "Peer not connected"),
                    Some(Some(peer)) => cx.send(peer, text.to_owned()),
                },
            },
        }
    }

    /// The connection is gone: each of its rooms is deleted and the other
    /// peer, if any, gets `peer-left`.
    pub fn close(&mut self, conn: ConnId, cx: &mut Cx<'_>) {
        for room_id in self.conns.remove(&conn).unwrap_or_default() {
            let Some(room) = self.rooms.remove(&room_id) else {
                continue;
            };
            cx.stats().rooms -= 1;
            if let Some(Some(peer)) = room.peer_of(conn) {
                if let Some(theirs) = self.conns.get_mut(&peer) {
                    theirs.retain(|r| *r != room_id);
                }
                cx.send(peer, Message::PeerLeft { room_id: &room_id }.encode());
            }
        }
    }

    /// Number of live rooms.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Number of connections.
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Whether `conn` is on this route.
    pub fn has_conn(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// A room's host, then its guest if any.
    pub fn members(&self, room_id: &str) -> Option<Vec<ConnId>> {
        let room = self.rooms.get(room_id)?;
        Some(std::iter::once(room.host).chain(room.guest).collect())
    }

    /// Checks that connections and rooms agree.
    pub fn check(&self, max_rooms: usize) -> Result<(), String> {
        let mut seats = 0;
        for (conn, mine) in &self.conns {
            if mine.len() > max_rooms {
                return Err(format!("signal: {conn:?} in {} rooms", mine.len()));
            }
            for room_id in mine {
                let room = self.rooms.get(room_id);
                if room.and_then(|r| r.peer_of(*conn)).is_none() {
                    return Err(format!("signal: {conn:?} lists {room_id} wrongly"));
                }
            }
            seats += mine.len();
        }
        let occupied: usize = self
            .rooms
            .values()
            .map(|r| 1 + usize::from(r.guest.is_some()))
            .sum();
        if seats != occupied {
            return Err(format!("signal: {seats} seats listed, {occupied} occupied"));
        }
        for (room_id, room) in &self.rooms {
            if !(100_000..=999_999).contains(&room_id.parse::<u32>().unwrap_or(0)) {
                return Err(format!("signal: bad room ID {room_id}"));
            }
            if Some(room.host) == room.guest {
                return Err(format!("signal: {room_id} hosted by its guest"));
            }
        }
        Ok(())
    }
}

/// A random room ID from `"100000"` to `"999999"` not in use.
fn fresh_id(rooms: &HashMap<String, Room>, cx: &mut Cx<'_>) -> Option<String> {
    (0..ID_ATTEMPTS)
        .map(|_| (100_000 + cx.rng.below(900_000)).to_string())
        .find(|id| !rooms.contains_key(id))
}
