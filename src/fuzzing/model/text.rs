//! What a text message does, protocol by protocol (PROTOCOLS.md), to the
//! reference state, and who may hear of it.

use super::route::RoomKey;
use super::{Expect, Model};
use crate::engine::ConnId;
use crate::fuzzing::templates::{Msg, RoomRef};
use crate::protocol::{Protocol, chat};

impl Model {
    /// `conn`'s message `msg`, past the rate limiter.
    pub(super) fn text(&mut self, conn: ConnId, msg: &Msg, e: &mut Expect) {
        let Some(route) = self.conns.get(&conn).map(|c| c.route) else {
            return;
        };
        let max = self.config.max_rooms_per_conn;
        let r = &mut self.routes[route];
        let parsed;
        let msg = match msg {
            Msg::Text(text) => match Msg::parse(r.protocol, text) {
                Some(msg) => {
                    parsed = msg;
                    &parsed
                }
                None if r.protocol == Protocol::Chat => {
                    if let Ok(chat::Command::Chat { .. }) = chat::decode(text) {
                        e.hear = r.conns.iter().copied().collect();
                    } else {
                        e.one_send_to = Some(conn);
                    }
                    return;
                }
                None => return e.one_send_to = Some(conn),
            },
            msg => msg,
        };
        e.hear.insert(conn);
        match msg {
            Msg::Join(session) => {
                e.hear.extend(r.leave_session(conn));
                let members = r.sessions.entry(session.clone()).or_default();
                e.hear.extend(members.iter());
                members.push(conn);
            }
            Msg::Sync(session, _) if r.session_of(conn).as_ref() == Some(session) => {
                e.hear.extend(r.members(RoomKey::Name(session)));
            }
            Msg::Leave if r.session_of(conn).is_some() => e.hear.extend(r.leave_session(conn)),
            Msg::Create if r.rooms_of(conn) < max => {
                r.signal.push(Some((conn, None)));
                e.one_send_to = Some(conn);
            }
            Msg::JoinRoom(RoomRef::Created(n)) => {
                let free = r.rooms_of(conn) < max;
                match r.signal.get_mut(*n) {
                    Some(Some((host, guest @ None))) if *host != conn && free => {
                        *guest = Some(conn);
                        e.hear.insert(*host);
                    }
                    _ => e.one_send_to = Some(conn),
                }
            }
            Msg::Relay(RoomRef::Created(n), _) => {
                let peer = match r.signal.get(*n) {
                    Some(Some((host, Some(guest)))) if *host == conn => Some(*guest),
                    Some(Some((host, Some(guest)))) if *guest == conn => Some(*host),
                    _ => None,
                };
                e.one_send_to = Some(peer.unwrap_or(conn));
            }
            // A literal ID is no room the model knows (the drivers never
            // send a join to a live one); a relay to one reaches at most
            // the sender's peers.
            Msg::Relay(RoomRef::Id(_), _) => e.hear.extend(r.peers(conn)),
            Msg::Enter { room, user, .. } => {
                e.hear
                    .extend(r.leave_stream(conn, room).unwrap_or_default());
                if r.rooms_of(conn) >= max {
                    return;
                }
                let members = r.stream.entry(room.clone()).or_default();
                e.hear.extend(members.iter().map(|(_, c)| *c));
                match members.iter_mut().find(|(u, _)| u == user) {
                    Some((_, holder)) => *holder = conn,
                    None => members.push((user.clone(), conn)),
                }
            }
            Msg::Streaming { room, user, .. } | Msg::Say { room, user }
                if r.participant(conn, room) == Some(user.as_str()) =>
            {
                e.hear.extend(r.members(RoomKey::Name(room)));
            }
            Msg::Exit(room) if r.participant(conn, room).is_some() => {
                e.hear
                    .extend(r.leave_stream(conn, room).unwrap_or_default());
            }
            _ => e.one_send_to = Some(conn),
        }
    }
}
