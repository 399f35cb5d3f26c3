//! `signal`: WebRTC signaling between a host and one guest (see PROTOCOLS.md).
//!
//! `signal` and `chat-message` are forwarded as the exact text received, so
//! only their `type` and `roomId` are decoded.

use super::envelope::{Fields, ParseError};
use serde::Serialize;
use std::borrow::Cow;

/// An inbound signal command.
#[derive(Debug)]
pub enum Command<'a> {
    /// `{"type":"create-room"}`.
    CreateRoom,
    /// `{"type":"join-room","roomId":R}`.
    JoinRoom {
        /// The room to join.
        room_id: Cow<'a, str>,
    },
    /// `{"type":"signal","roomId":R,...}` or `{"type":"chat-message",...}`:
    /// the whole message goes verbatim to the other peer.
    Relay {
        /// The room whose other peer gets the message.
        room_id: Cow<'a, str>,
    },
}

/// Decodes one inbound text message.
pub fn decode(text: &str) -> Result<Command<'_>, ParseError> {
    let (f, ty) = Fields::parse(text)?;
    Ok(match &*ty {
        "create-room" => Command::CreateRoom,
        "join-room" => Command::JoinRoom {
            room_id: Fields::string(f.room_id, "roomId")?,
        },
        "signal" | "chat-message" => Command::Relay {
            room_id: Fields::string(f.room_id, "roomId")?,
        },
        _ => return Err(ParseError::UnknownType(ty.into_owned())),
    })
}

/// An outbound signal message (relayed messages are sent as received).
#[derive(Debug, Serialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Message<'a> {
    /// Reply to `create-room`.
    RoomCreated {
        /// The new room's 6-digit ID.
        room_id: &'a str,
    },
    /// To both peers when a guest joins.
    PeerJoined {
        /// The room.
        room_id: &'a str,
    },
    /// To the remaining peer when the other disconnects.
    PeerLeft {
        /// The room, now deleted.
        room_id: &'a str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Encode;

    #[test]
    fn decodes_and_encodes() {
        assert!(matches!(
            decode(r#"{"type":"create-room"}"#),
            Ok(Command::CreateRoom)
        ));
        assert!(matches!(
            decode(r#"{"type":"chat-message","roomId":"123456","message":"hi"}"#),
            Ok(Command::Relay { room_id }) if room_id == "123456"
        ));
        assert_eq!(
            decode(r#"{"type":"signal","roomId":123456}"#).unwrap_err(),
            ParseError::Field("roomId")
        );
        assert_eq!(
            Message::PeerLeft { room_id: "123456" }.encode(),
            r#"{"type":"peer-left","roomId":"123456"}"#
        );
    }
}
