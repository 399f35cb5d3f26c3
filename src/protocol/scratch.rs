//! `scratch`: collaborative session sync (see PROTOCOLS.md).

use super::envelope::{Fields, ParseError};
use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// An inbound scratch command.
#[derive(Debug)]
pub enum Command<'a> {
    /// `{"type":"join","sessionId":S}`.
    Join {
        /// The session to join.
        session_id: Cow<'a, str>,
    },
    /// `{"type":"sync","sessionId":S,"changes":C}`.
    Sync {
        /// The session the changes are for.
        session_id: Cow<'a, str>,
        /// The changes, verbatim.
        changes: &'a RawValue,
    },
    /// `{"type":"leave"}`.
    Leave,
}

/// Decodes one inbound text message.
pub fn decode(text: &str) -> Result<Command<'_>, ParseError> {
    let (f, ty) = Fields::parse(text)?;
    Ok(match &*ty {
        "join" => Command::Join {
            session_id: Fields::id(f.session_id, "sessionId")?,
        },
        "sync" => Command::Sync {
            session_id: Fields::id(f.session_id, "sessionId")?,
            changes: f.changes.ok_or(ParseError::Field("changes"))?,
        },
        "leave" => Command::Leave,
        _ => return Err(ParseError::UnknownType(ty.into_owned())),
    })
}

/// An outbound scratch message.
#[derive(Debug, Serialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Message<'a> {
    /// Reply to `join`: the user IDs of the others already in the session.
    Joined {
        /// The session.
        session_id: &'a str,
        /// The joiner.
        user_id: &'a str,
        /// The others already there.
        users: &'a [&'a str],
    },
    /// To the others on `join`.
    UserJoined {
        /// The session.
        session_id: &'a str,
        /// The joiner.
        user_id: &'a str,
    },
    /// To the others on `sync`.
    Sync {
        /// The session.
        session_id: &'a str,
        /// The sender.
        user_id: &'a str,
        /// The changes, verbatim.
        changes: &'a RawValue,
    },
    /// Reply to `leave`.
    Left {
        /// The session left.
        session_id: &'a str,
    },
    /// To the others on `leave` or disconnect.
    UserLeft {
        /// The session.
        session_id: &'a str,
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
        match decode(r#"{"type":"sync","sessionId":"s","changes":{"z":1, "a":[2]}}"#) {
            Ok(Command::Sync {
                session_id,
                changes,
            }) => {
                let msg = Message::Sync {
                    session_id: &session_id,
                    user_id: "u",
                    changes,
                };
                assert_eq!(
                    msg.encode(),
                    r#"{"type":"sync","sessionId":"s","userId":"u","changes":{"z":1, "a":[2]}}"#
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(decode(r#"{"type":"leave"}"#), Ok(Command::Leave)));
        assert_eq!(
            decode(r#"{"type":"hop"}"#).unwrap_err(),
            ParseError::UnknownType("hop".into())
        );
        assert_eq!(
            decode(r#"{"type":"join"}"#).unwrap_err(),
            ParseError::Field("sessionId")
        );
        let users = ["a", "b"];
        let joined = Message::Joined {
            session_id: "s",
            user_id: "u",
            users: &users,
        };
        assert_eq!(
            joined.encode(),
            r#"{"type":"joined","sessionId":"s","userId":"u","users":["a","b"]}"#
        );
    }
}
