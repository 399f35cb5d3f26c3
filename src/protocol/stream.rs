//! `stream`: multi-user streaming rooms (see PROTOCOLS.md).

use super::envelope::{Fields, ParseError};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Encode;

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
}
