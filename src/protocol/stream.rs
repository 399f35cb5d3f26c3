//! `stream`: multi-user streaming rooms (see PROTOCOLS.md).

use super::envelope::{Fields, ParseError};
use super::json::push_field;
use serde::Serialize;
use std::borrow::Cow;

/// An inbound stream command.
#[derive(Debug)]
pub enum Command<'a> {
    /// `{"type":"join-room","roomId":R,"userId":U,"userName":N}`.
    JoinRoom {
        /// The room.
        room_id: Cow<'a, str>,
        /// The participant's user ID.
        user_id: Cow<'a, str>,
        /// The participant's display name.
        user_name: Cow<'a, str>,
    },
    /// `start-streaming` (`true`) or `stop-streaming` (`false`).
    SetStreaming {
        /// The room.
        room_id: Cow<'a, str>,
        /// Must be the participant this connection joined as.
        user_id: Cow<'a, str>,
        /// The new `isStreaming`.
        streaming: bool,
    },
    /// `{"type":"chat-message","roomId":R,"userId":U,"content":C}`.
    ChatMessage {
        /// The room.
        room_id: Cow<'a, str>,
        /// Must be the participant this connection joined as.
        user_id: Cow<'a, str>,
        /// The text.
        content: Cow<'a, str>,
    },
    /// `{"type":"leave-room","roomId":R}`.
    LeaveRoom {
        /// The room.
        room_id: Cow<'a, str>,
    },
}

/// Decodes one inbound text message.
pub fn decode(text: &str) -> Result<Command<'_>, ParseError> {
    let (f, ty) = Fields::parse(text)?;
    let room_id = || Fields::id(f.room_id, "roomId");
    let user_id = || Fields::id(f.user_id, "userId");
    Ok(match &*ty {
        "join-room" => Command::JoinRoom {
            room_id: room_id()?,
            user_id: user_id()?,
            user_name: Fields::id(f.user_name, "userName")?,
        },
        "start-streaming" | "stop-streaming" => Command::SetStreaming {
            room_id: room_id()?,
            user_id: user_id()?,
            streaming: ty == "start-streaming",
        },
        "chat-message" => Command::ChatMessage {
            room_id: room_id()?,
            user_id: user_id()?,
            content: Fields::string(f.content, "content")?,
        },
        "leave-room" => Command::LeaveRoom {
            room_id: room_id()?,
        },
        _ => return Err(ParseError::UnknownType(ty.into_owned())),
    })
}

/// A participant as listed to clients.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant<'a> {
    /// The user ID.
    pub user_id: &'a str,
    /// The display name.
    pub user_name: &'a str,
    /// Whether the user is streaming.
    pub is_streaming: bool,
}

/// An outbound stream message.
#[derive(Debug, Serialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Message<'a> {
    /// Reply to `join-room`: every participant, the joiner included.
    RoomJoined {
        /// The room.
        room_id: &'a str,
        /// The participants, in the order they joined.
        participants: &'a [Participant<'a>],
    },
    /// To the others on `join-room`.
    UserJoined {
        /// The room.
        room_id: &'a str,
        /// The joiner.
        participant: Participant<'a>,
    },
    /// To all on `start-streaming`.
    UserStreamingStarted {
        /// The room.
        room_id: &'a str,
        /// The participant.
        user_id: &'a str,
    },
    /// To all on `stop-streaming`.
    UserStreamingStopped {
        /// The room.
        room_id: &'a str,
        /// The participant.
        user_id: &'a str,
    },
    /// To all on `chat-message`.
    ChatMessage {
        /// The room.
        room_id: &'a str,
        /// The sender.
        user_id: &'a str,
        /// The sender's display name.
        user_name: &'a str,
        /// The text.
        content: &'a str,
        /// `TS`.
        timestamp: &'a str,
    },
    /// To the others on `leave-room` or disconnect.
    UserLeft {
        /// The room.
        room_id: &'a str,
        /// Who left.
        user_id: &'a str,
    },
}

impl Participant<'_> {
    /// Appends this participant's JSON object (see [`Message::to_json`]).
    fn push_json(&self, out: &mut String) {
        out.push('{');
        push_field(out, "userId", self.user_id);
        out.push(',');
        push_field(out, "userName", self.user_name);
        out.push_str(if self.is_streaming {
            ",\"isStreaming\":true}"
        } else {
            ",\"isStreaming\":false}"
        });
    }

    /// Bytes of this participant's JSON object when nothing is escaped.
    fn json_len(&self) -> usize {
        47 + self.user_id.len() + self.user_name.len()
    }
}

impl Message<'_> {
    /// The JSON text of this message: the same bytes as its derived
    /// `Serialize` (what [`crate::protocol::Encode::encode`] writes), built
    /// by hand because `room-joined` and `user-joined` are on every
    /// connection's path, where serde's escaping of each key and value was
    /// an eighth of a handshake-and-join's instructions.
    pub fn to_json(&self) -> String {
        let (ty, room_id) = match self {
            Message::RoomJoined { room_id, .. } => ("room-joined", room_id),
            Message::UserJoined { room_id, .. } => ("user-joined", room_id),
            Message::UserStreamingStarted { room_id, .. } => ("user-streaming-started", room_id),
            Message::UserStreamingStopped { room_id, .. } => ("user-streaming-stopped", room_id),
            Message::ChatMessage { room_id, .. } => ("chat-message", room_id),
            Message::UserLeft { room_id, .. } => ("user-left", room_id),
        };
        let rest = match self {
            Message::RoomJoined { participants, .. } => {
                participants.iter().map(|p| p.json_len() + 1).sum()
            }
            Message::UserJoined { participant, .. } => participant.json_len(),
            Message::ChatMessage {
                user_id,
                user_name,
                content,
                timestamp,
                ..
            } => user_id.len() + user_name.len() + content.len() + timestamp.len(),
            Message::UserStreamingStarted { user_id, .. }
            | Message::UserStreamingStopped { user_id, .. }
            | Message::UserLeft { user_id, .. } => user_id.len(),
        };
        let mut out = String::with_capacity(80 + ty.len() + room_id.len() + rest);
        out.push_str("{\"type\":\"");
        out.push_str(ty);
        out.push_str("\",");
        push_field(&mut out, "roomId", room_id);
        match self {
            Message::RoomJoined { participants, .. } => {
                out.push_str(",\"participants\":[");
                for (i, p) in participants.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    p.push_json(&mut out);
                }
                out.push(']');
            }
            Message::UserJoined { participant, .. } => {
                out.push_str(",\"participant\":");
                participant.push_json(&mut out);
            }
            Message::UserStreamingStarted { user_id, .. }
            | Message::UserStreamingStopped { user_id, .. }
            | Message::UserLeft { user_id, .. } => {
                out.push(',');
                push_field(&mut out, "userId", user_id);
            }
            Message::ChatMessage {
                user_id,
                user_name,
                content,
                timestamp,
                ..
            } => {
                for (key, value) in [
                    ("userId", user_id),
                    ("userName", user_name),
                    ("content", content),
                    ("timestamp", timestamp),
                ] {
                    out.push(',');
                    push_field(&mut out, key, value);
                }
            }
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Encode;
    use proptest::prelude::*;

    #[test]
    fn decodes_and_encodes() {
        let cmd = decode(r#"{"type":"chat-message","roomId":"r","userId":"u","content":"hi"}"#);
        assert!(matches!(cmd, Ok(Command::ChatMessage { content, .. }) if content == "hi"));
        assert_eq!(
            decode(r#"{"type":"chat-message","roomId":"r","userId":"u","content":1}"#).unwrap_err(),
            ParseError::Field("content")
        );
        assert_eq!(
            decode(r#"{"type":"join-room","roomId":"r","userId":"u"}"#).unwrap_err(),
            ParseError::Field("userName")
        );
        assert!(matches!(
            decode(r#"{"type":"stop-streaming","roomId":"r","userId":"u"}"#),
            Ok(Command::SetStreaming {
                streaming: false,
                ..
            })
        ));
        let p = Participant {
            user_id: "u",
            user_name: "N",
            is_streaming: false,
        };
        assert_eq!(
            Message::UserJoined {
                room_id: "r",
                participant: p
            }
            .encode(),
            r#"{"type":"user-joined","roomId":"r","participant":{"userId":"u","userName":"N","isStreaming":false}}"#
        );
        assert_eq!(
            Message::ChatMessage {
                room_id: "r",
                user_id: "u",
                user_name: "N",
                content: "c",
                timestamp: "T"
            }
            .encode(),
            r#"{"type":"chat-message","roomId":"r","userId":"u","userName":"N","content":"c","timestamp":"T"}"#
        );
    }

    fn same_as_serde(msg: &Message<'_>) {
        assert_eq!(msg.to_json(), msg.encode());
    }

    proptest! {
        #[test]
        fn hand_written_json_is_serdes(
            a in ".{0,12}", b in ".{0,12}", c in "[ -~\\t\\n\"\\\\]{0,12}", flag in any::<bool>(),
        ) {
            let p = Participant { user_id: &a, user_name: &b, is_streaming: flag };
            let q = Participant { user_id: &c, user_name: "", is_streaming: !flag };
            for participants in [&[][..], &[p][..], &[p, q][..]] {
                same_as_serde(&Message::RoomJoined { room_id: &c, participants });
            }
            same_as_serde(&Message::UserJoined { room_id: &a, participant: q });
            same_as_serde(&Message::UserStreamingStarted { room_id: &a, user_id: &c });
            same_as_serde(&Message::UserStreamingStopped { room_id: &b, user_id: &a });
            same_as_serde(&Message::UserLeft { room_id: &c, user_id: &b });
            same_as_serde(&Message::ChatMessage {
                room_id: &a, user_id: &b, user_name: &c, content: &c, timestamp: &a,
            });
        }
    }
}
