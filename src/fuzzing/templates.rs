//! The one set of client messages both drivers send: every protocol's
//! messages as values the model understands ([`Msg`]), written out as JSON
//! by [`Msg::render`], picked by number from [`template`]; plus malformed
//! texts. Arbitrary text goes the other way, through the protocol's
//! decoder, with [`Msg::parse`].

use crate::protocol::{Protocol, scratch, signal, stream};

/// Names used for sessions, rooms and users (presence `userId`s too).
pub const NAMES: [&str; 7] = ["lobby", "a", "b", "42", "room 1", "\u{e9}t\u{e9}", "0042"];

/// Malformed messages every protocol answers with its error message.
pub const MALFORMED: [&str; 8] = [
    "",
    "not json",
    "[1,2,3]",
    "\"a string\"",
    "{}",
    r#"{"type":42}"#,
    r#"{"type":"no-such-type"}"#,
    r#"{"type":"join","sessionId":"lobby""#,
];

/// Templates per protocol: [`template`] takes the index modulo this.
pub const TEMPLATES_PER_PROTOCOL: [usize; 5] = [6, 6, 3, 6, 6];

/// A `signal` room as a message names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomRef {
    /// The `n`th room created on the sender's route (live or not); the
    /// driver writes the ID the engine gave it.
    Created(usize),
    /// A literal ID, which the model takes for no room it knows.
    Id(String),
}

/// A client message, as the model understands it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// `scratch` `join`.
    Join(String),
    /// `scratch` `sync` in a session, with the `n`th changes payload.
    Sync(String, usize),
    /// `scratch` `leave`.
    Leave,
    /// `signal` `create-room`.
    Create,
    /// `signal` `join-room`.
    JoinRoom(RoomRef),
    /// `signal` `signal` (payloads 0, 1) or `chat-message` (2), relayed.
    Relay(RoomRef, usize),
    /// `stream` `join-room` as a user with a display name.
    Enter {
        /// `roomId`.
        room: String,
        /// `userId`.
        user: String,
        /// `userName`.
        name: String,
    },
    /// `stream` `start-streaming` (`on`) or `stop-streaming`.
    Streaming {
        /// `roomId`.
        room: String,
        /// `userId`.
        user: String,
        /// Start or stop.
        on: bool,
    },
    /// `stream` `chat-message`.
    Say {
        /// `roomId`.
        room: String,
        /// `userId`.
        user: String,
    },
    /// `stream` `leave-room`.
    Exit(String),
    /// Any other text (every `chat` and `presence` message, malformed
    /// ones): the model reads it with the protocol's decoder.
    Text(String),
}

/// A JSON string literal.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

const CHANGES: [&str; 2] = [
    r#"{"ops":[{"insert":"when flag clicked","at":3}]}"#,
    r#"[1,2.5,null,"x"]"#,
];

const RELAYS: [&str; 3] = [
    r#""signal","signal":{"type":"offer","sdp":"v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\n"}"#,
    r#""signal","signal":{"candidate":"candidate:1 1 UDP 2122252543 192.168.1.2 54400 typ host","sdpMid":"0","sdpMLineIndex":0}"#,
    r#""chat-message","message":"hello","sender":"host""#,
];

/// What the sender's route offers a template besides [`NAMES`].
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// How many `signal` rooms were created on the route.
    pub created: usize,
    /// The sender's own `(session or room, userId)` memberships.
    pub own: Vec<(String, String)>,
}

/// Message `index` (modulo [`TEMPLATES_PER_PROTOCOL`]) of `protocol`, its
/// names picked from [`NAMES`] by `slots`; a slot 0 of `0x80` or more
/// picks one of the sender's own memberships instead (room and user), and
/// on `signal` slot 0 picks one of the created rooms if there are any.
pub fn template(protocol: Protocol, index: u8, slots: [u8; 3], cx: &Context) -> Msg {
    let name = |i: usize| NAMES[usize::from(slots[i]) % NAMES.len()].to_string();
    let own = match cx.own.len() {
        0 => None,
        n if slots[0] >= 0x80 => cx.own.get(usize::from(slots[0]) % n).cloned(),
        _ => None,
    };
    let [n0, n1] = own.unwrap_or_else(|| (name(0), name(1))).into();
    let n2 = name(2);
    let count = TEMPLATES_PER_PROTOCOL[protocol.index()];
    let text = |s: String| Msg::Text(s);
    match (protocol, usize::from(index) % count) {
        (Protocol::Scratch, 0) => Msg::Join(n0),
        (Protocol::Scratch, 1) => Msg::Sync(n0, 0),
        (Protocol::Scratch, 2) => Msg::Sync(n0, 1),
        (Protocol::Scratch, 3) => Msg::Leave,
        (Protocol::Scratch, 4) => text(r#"{"type":"join","sessionId":""}"#.into()),
        (Protocol::Scratch, _) => text(r#"{"type":"sync","changes":{}}"#.into()),
        (Protocol::Signal, i) => {
            let room = match cx.created {
                0 => RoomRef::Id(n0),
                n => RoomRef::Created(usize::from(slots[0]) % n),
            };
            match i {
                0 => Msg::Create,
                1 => Msg::JoinRoom(room),
                2..=4 => Msg::Relay(room, i - 2),
                _ => text(r#"{"type":"join-room","roomId":123456}"#.into()),
            }
        }
        (Protocol::Presence, 0) => text(r#"{"type":"PING"}"#.into()),
        (Protocol::Presence, 1) => text(format!(r#"{{"type":"STATUS","userId":{}}}"#, q(&n0))),
        (Protocol::Presence, _) => text(r#"{"type":"ping"}"#.into()),
        (Protocol::Chat, 0) => text(r#"{"type":"ping"}"#.into()),
        (Protocol::Chat, 1) => text(format!(
            r#"{{"type":"auth","payload":{{"token":{}}}}}"#,
            q(&n0)
        )),
        (Protocol::Chat, 2) => text(format!(
            r#"{{"type":"chat","payload":{{"text":{},"user":{}}}}}"#,
            q(&format!("hi from {n0}")),
            q(&n1)
        )),
        (Protocol::Chat, 3) => text(format!(
            r#"{{"type":"typing","payload":{{"user":{},"typing":true}}}}"#,
            q(&n0)
        )),
        (Protocol::Chat, 4) => text(r#"{"type":"custom"}"#.into()),
        (Protocol::Chat, _) => text(r#"{"type":"chat","payload":null}"#.into()),
        (Protocol::Stream, 0) => Msg::Enter {
            room: n0,
            user: n1,
            name: n2,
        },
        (Protocol::Stream, i @ (1 | 2)) => Msg::Streaming {
            room: n0,
            user: n1,
            on: i == 1,
        },
        (Protocol::Stream, 3) => Msg::Say { room: n0, user: n1 },
        (Protocol::Stream, 4) => Msg::Exit(n0),
        (Protocol::Stream, _) => text(format!(
            r#"{{"type":"chat-message","roomId":{},"userId":{},"content":42}}"#,
            q(&n0),
            q(&n1)
        )),
    }
}

impl Msg {
    /// The protocol a typed message belongs to (`None` for [`Msg::Text`]).
    pub fn protocol(&self) -> Option<Protocol> {
        Some(match self {
            Msg::Join(_) | Msg::Sync(..) | Msg::Leave => Protocol::Scratch,
            Msg::Create | Msg::JoinRoom(_) | Msg::Relay(..) => Protocol::Signal,
            Msg::Enter { .. } | Msg::Streaming { .. } | Msg::Say { .. } | Msg::Exit(_) => {
                Protocol::Stream
            }
            Msg::Text(_) => return None,
        })
    }

    /// The message as sent; `ids` are the IDs of the sender route's
    /// created `signal` rooms, in creation order.
    pub fn render(&self, ids: &[String]) -> String {
        let room_id = |r: &RoomRef| match r {
            RoomRef::Created(n) => q(ids.get(*n).map_or("", String::as_str)),
            RoomRef::Id(id) => q(id),
        };
        match self {
            Msg::Join(s) => format!(r#"{{"type":"join","sessionId":{}}}"#, q(s)),
            Msg::Sync(s, n) => format!(
                r#"{{"type":"sync","sessionId":{},"changes":{}}}"#,
                q(s),
                CHANGES[n % CHANGES.len()]
            ),
            Msg::Leave => r#"{"type":"leave"}"#.into(),
            Msg::Create => r#"{"type":"create-room"}"#.into(),
            Msg::JoinRoom(r) => format!(r#"{{"type":"join-room","roomId":{}}}"#, room_id(r)),
            Msg::Relay(r, n) => format!(
                r#"{{"roomId":{},"type":{}}}"#,
                room_id(r),
                RELAYS[n % RELAYS.len()]
            ),
            Msg::Enter { room, user, name } => format!(
                r#"{{"type":"join-room","roomId":{},"userId":{},"userName":{}}}"#,
                q(room),
                q(user),
                q(name)
            ),
            Msg::Streaming { room, user, on } => format!(
                r#"{{"type":"{}","roomId":{},"userId":{}}}"#,
                if *on {
                    "start-streaming"
                } else {
                    "stop-streaming"
                },
                q(room),
                q(user)
            ),
            Msg::Say { room, user } => format!(
                r#"{{"type":"chat-message","roomId":{},"userId":{},"content":{}}}"#,
                q(room),
                q(user),
                q(&format!("hello from {user}"))
            ),
            Msg::Exit(room) => format!(r#"{{"type":"leave-room","roomId":{}}}"#, q(room)),
            Msg::Text(text) => text.clone(),
        }
    }

    /// What `text` means on `protocol`, read with the protocol's decoder:
    /// a typed message where the model tracks its effect, else `None`
    /// (malformed, or a protocol whose messages change no membership).
    pub fn parse(protocol: Protocol, text: &str) -> Option<Msg> {
        let s = |c: std::borrow::Cow<'_, str>| c.into_owned();
        Some(match protocol {
            Protocol::Scratch => match scratch::decode(text).ok()? {
                scratch::Command::Join { session_id } => Msg::Join(s(session_id)),
                scratch::Command::Sync { session_id, .. } => Msg::Sync(s(session_id), 0),
                scratch::Command::Leave => Msg::Leave,
            },
            Protocol::Signal => match signal::decode(text).ok()? {
                signal::Command::CreateRoom => Msg::Create,
                signal::Command::JoinRoom { room_id } => Msg::JoinRoom(RoomRef::Id(s(room_id))),
                signal::Command::Relay { room_id } => Msg::Relay(RoomRef::Id(s(room_id)), 0),
            },
            Protocol::Stream => match stream::decode(text).ok()? {
                stream::Command::JoinRoom {
                    room_id,
                    user_id,
                    user_name,
                } => Msg::Enter {
                    room: s(room_id),
                    user: s(user_id),
                    name: s(user_name),
                },
                stream::Command::SetStreaming {
                    room_id,
                    user_id,
                    streaming,
                } => Msg::Streaming {
                    room: s(room_id),
                    user: s(user_id),
                    on: streaming,
                },
                stream::Command::ChatMessage {
                    room_id, user_id, ..
                } => Msg::Say {
                    room: s(room_id),
                    user: s(user_id),
                },
                stream::Command::LeaveRoom { room_id } => Msg::Exit(s(room_id)),
            },
            Protocol::Presence | Protocol::Chat => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_is_a_json_object_with_a_type() {
        for p in Protocol::ALL {
            for i in 0..TEMPLATES_PER_PROTOCOL[p.index()] as u8 {
                for slots in [[0, 1, 2], [4, 5, 6], [0x80, 0, 0]] {
                    let ids = ["123456".to_string()];
                    let cx = Context {
                        created: 1,
                        own: vec![("lobby".into(), "1".into())],
                    };
                    let text = template(p, i, slots, &cx).render(&ids);
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    assert!(v["type"].is_string(), "{text}");
                }
            }
        }
    }

    #[test]
    fn typed_templates_parse_back_to_themselves() {
        for p in [Protocol::Scratch, Protocol::Stream] {
            for i in 0..TEMPLATES_PER_PROTOCOL[p.index()] as u8 {
                let msg = template(p, i, [4, 5, 6], &Context::default());
                let parsed = Msg::parse(p, &msg.render(&[]));
                match msg {
                    Msg::Text(_) => assert_eq!(parsed, None, "{msg:?}"),
                    Msg::Sync(s, _) => assert_eq!(parsed, Some(Msg::Sync(s, 0))),
                    msg => assert_eq!(parsed, Some(msg)),
                }
            }
        }
        let cx = Context {
            created: 1,
            own: Vec::new(),
        };
        let join = template(Protocol::Signal, 1, [0; 3], &cx).render(&["654321".into()]);
        let id = RoomRef::Id("654321".into());
        assert_eq!(Msg::parse(Protocol::Signal, &join), Some(Msg::JoinRoom(id)));
    }
}
