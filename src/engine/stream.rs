//! A `stream` route's state: rooms of participants tracked by `userId`.

use super::ordered::OrderedMap;
use super::outbox::Cx;
use super::{ConnId, ConnMap};
use crate::protocol::auth::USER_ID_NOT_SUBJECT;
use crate::protocol::stream::{Command, Message, Participant, decode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A participant of a room and the connection that holds it.
#[derive(Debug, Serialize, Deserialize)]
struct Member {
    conn: ConnId,
    user_name: String,
    streaming: bool,
}

/// One room's participants by `userId`, in joining order.
type Room = OrderedMap<String, Member>;

/// The rooms of one `stream` route.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StreamRoute {
    /// Each connection's `(roomId, userId)` memberships, in joining order.
    conns: ConnMap<Vec<(String, String)>>,
    rooms: HashMap<String, Room>,
}

impl StreamRoute {
    /// A connection opened.
    pub fn open(&mut self, conn: ConnId) {
        self.conns.insert(conn, Vec::new());
    }

    /// One text message from `conn`.
    pub fn text(&mut self, conn: ConnId, text: &str, cx: &mut Cx<'_>) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        let cmd = match decode(text) {
            Ok(cmd) => cmd,
            Err(e) => return cx.error(conn, &e.to_string()),
        };
        match cmd {
            Command::JoinRoom {
                room_id,
                user_id,
                user_name,
            } => self.join(conn, &room_id, &user_id, &user_name, cx),
            Command::LeaveRoom { room_id } => {
                if !self.leave(conn, &room_id, cx) {
                    cx.error(conn, &format!("Not in room {room_id}"));
                }
            }
            Command::SetStreaming {
                room_id,
                user_id,
                streaming,
            } => {
                let Some(room) = self.acting_member(conn, &room_id, &user_id, cx) else {
                    return;
                };
                if let Some(member) = room.get_mut(&*user_id) {
                    member.streaming = streaming;
                }
                let msg = if streaming {
                    Message::UserStreamingStarted {
                        room_id: &room_id,
                        user_id: &user_id,
                    }
                } else {
                    Message::UserStreamingStopped {
                        room_id: &room_id,
                        user_id: &user_id,
                    }
                };
                cx.broadcast(room.values().map(|m| m.conn), msg.to_json());
            }
            Command::ChatMessage {
                room_id,
                user_id,
                content,
            } => {
                let ts = cx.ts().to_owned();
                let Some(room) = self.acting_member(conn, &room_id, &user_id, cx) else {
                    return;
                };
                let user_name = room.get(&*user_id).map_or("", |m| &m.user_name);
                let msg = Message::ChatMessage {
                    room_id: &room_id,
                    user_id: &user_id,
                    user_name,
                    content: &content,
                    timestamp: &ts,
                };
                cx.broadcast(room.values().map(|m| m.conn), msg.to_json());
            }
        }
    }

    /// The room `room_id` if `conn` joined it as `user_id`; otherwise sends
    /// the error and returns `None`.
    fn acting_member(
        &mut self,
        conn: ConnId,
        room_id: &str,
        user_id: &str,
        cx: &mut Cx<'_>,
    ) -> Option<&mut Room> {
        let mine = self.conns.get(&conn)?;
        match mine.iter().find(|(r, _)| r == room_id) {
            None => cx.error(conn, &format!("Not in room {room_id}")),
            Some((_, u)) if u != user_id => cx.error(conn, "userId does not match this connection"),
            Some(_) => return self.rooms.get_mut(room_id),
        }
        None
    }

    fn join(
        &mut self,
        conn: ConnId,
        room_id: &str,
        user_id: &str,
        user_name: &str,
        cx: &mut Cx<'_>,
    ) {
        if cx.identity.is_some_and(|i| i.sub != user_id) {
            return cx.error(conn, USER_ID_NOT_SUBJECT);
        }
        if !cx.may_enter(conn, room_id) {
            return;
        }
        // Joining a room again (under any userId) first leaves it.
        self.leave(conn, room_id, cx);
        let Some(mine) = self.conns.get_mut(&conn) else {
            return;
        };
        if mine.len() >= cx.config.max_rooms_per_conn {
            return cx.error(conn, "Room limit reached");
        }
        mine.push((room_id.to_owned(), user_id.to_owned()));
        let room = self.rooms.entry(room_id.to_owned()).or_insert_with(|| {
            cx.stats().rooms += 1;
            Room::default()
        });
        let replaced = match room.get_mut(user_id) {
            // Takeover: the participant moves to this connection.
            Some(member) => Some(std::mem::replace(&mut member.conn, conn)),
            None => {
                let member = Member {
                    conn,
                    user_name: user_name.to_owned(),
                    streaming: false,
                };
                room.insert(user_id.to_owned(), member);
                None
            }
        };
        let participants: Vec<Participant<'_>> = room.iter().map(participant).collect();
        let reply = Message::RoomJoined {
            room_id,
            participants: &participants,
        };
        cx.send(conn, reply.to_json());
        match replaced {
            Some(old) => {
                if let Some(theirs) = self.conns.get_mut(&old) {
                    theirs.retain(|(r, _)| r != room_id);
                }
                cx.error(old, "Replaced by a newer connection");
            }
            None => {
                let joined = room.get(user_id).map(|m| Participant {
                    user_id,
                    user_name: &m.user_name,
                    is_streaming: m.streaming,
                });
                if let Some(participant) = joined {
                    let notice = Message::UserJoined {
                        room_id,
                        participant,
                    };
                    cx.broadcast(others(room, conn), notice.to_json());
                }
            }
        }
    }

    /// Leaves `room_id`; `false` if `conn` was not in it.
    fn leave(&mut self, conn: ConnId, room_id: &str, cx: &mut Cx<'_>) -> bool {
        let Some(mine) = self.conns.get_mut(&conn) else {
            return false;
        };
        let Some(pos) = mine.iter().position(|(r, _)| r == room_id) else {
            return false;
        };
        let (room_id, user_id) = mine.remove(pos);
        self.remove_member(conn, &room_id, &user_id, cx);
        true
    }

    fn remove_member(&mut self, conn: ConnId, room_id: &str, user_id: &str, cx: &mut Cx<'_>) {
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        if room.get(user_id).map(|m| m.conn) != Some(conn) {
            return;
        }
        room.remove(user_id);
        let notice = Message::UserLeft { room_id, user_id };
        cx.broadcast(room.values().map(|m| m.conn), notice.to_json());
        if room.is_empty() {
            self.rooms.remove(room_id);
            cx.stats().rooms -= 1;
        }
    }

    /// The connection is gone: it leaves every room it was in.
    pub fn close(&mut self, conn: ConnId, cx: &mut Cx<'_>) {
        for (room_id, user_id) in self.conns.remove(&conn).unwrap_or_default() {
            self.remove_member(conn, &room_id, &user_id, cx);
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

    /// The connections holding a room's participants, in joining order.
    pub fn members(&self, room_id: &str) -> Option<Vec<ConnId>> {
        Some(self.rooms.get(room_id)?.values().map(|m| m.conn).collect())
    }

    /// Checks that connections and rooms agree.
    pub fn check(&self, max_rooms: usize) -> Result<(), String> {
        let mut listed = 0;
        for (conn, mine) in &self.conns {
            if mine.len() > max_rooms {
                return Err(format!("stream: {conn:?} in {} rooms", mine.len()));
            }
            for (i, (room_id, user_id)) in mine.iter().enumerate() {
                if mine[..i].iter().any(|(r, _)| r == room_id) {
                    return Err(format!("stream: {conn:?} in {room_id} twice"));
                }
                let holder = self
                    .rooms
                    .get(room_id)
                    .and_then(|r| r.get(user_id))
                    .map(|m| m.conn);
                if holder != Some(*conn) {
                    return Err(format!(
                        "stream: {conn:?} lists {room_id}/{user_id} wrongly"
                    ));
                }
            }
            listed += mine.len();
        }
        let mut seats = 0;
        for (room_id, room) in &self.rooms {
            room.check()?;
            if room.is_empty() {
                return Err(format!("stream: empty room {room_id}"));
            }
            seats += room.len();
        }
        if listed != seats {
            return Err(format!(
                "stream: {listed} memberships listed, {seats} participants"
            ));
        }
        Ok(())
    }
}

fn participant<'a>((user_id, m): (&'a String, &'a Member)) -> Participant<'a> {
    Participant {
        user_id,
        user_name: &m.user_name,
        is_streaming: m.streaming,
    }
}

fn others(room: &Room, conn: ConnId) -> impl Iterator<Item = ConnId> + '_ {
    room.values().map(|m| m.conn).filter(move |&c| c != conn)
}
