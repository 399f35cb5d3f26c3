//! `presence`: online status (see PROTOCOLS.md).

use super::envelope::{Fields, MAX_ID_CHARS, ParseError};
use serde::{Serialize, Serializer};

/// An inbound presence command: only `{"type":"PING"}` exists.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `{"type":"PING"}`.
    Ping,
}

/// Decodes one inbound text message.
pub fn decode(text: &str) -> Result<Command, ParseError> {
    let (_, ty) = Fields::parse(text)?;
    match &*ty {
        "PING" => Ok(Command::Ping),
        _ => Err(ParseError::UnknownType(ty.into_owned())),
    }
}

/// Why a presence connection's query has no valid `userId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserIdError {
    /// No `userId` parameter.
    Missing,
    /// `userId` is empty.
    Empty,
    /// `userId` is over 128 characters.
    TooLong,
}

impl UserIdError {
    /// A short reason, for the `400` refusing the upgrade and the 1008
    /// close.
    pub fn as_str(self) -> &'static str {
        match self {
            UserIdError::Missing => "missing userId query parameter",
            UserIdError::Empty => "empty userId",
            UserIdError::TooLong => "userId longer than 128 characters",
        }
    }
}

/// The `userId` of a connection's query string: the first `userId`
/// parameter, percent-decoded (`+` is a space, as in `URLSearchParams`),
/// non-empty and at most 128 characters.
pub fn user_id_from_query(query: &str) -> Result<String, UserIdError> {
    let value = query
        .split('&')
        .find_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name) == "userId").then(|| percent_decode(value))
        })
        .ok_or(UserIdError::Missing)?;
    if value.is_empty() {
        return Err(UserIdError::Empty);
    }
    if value.chars().count() > MAX_ID_CHARS {
        return Err(UserIdError::TooLong);
    }
    Ok(value)
}

/// Decodes `%XX` escapes and `+`; malformed escapes stay as they are and
/// invalid UTF-8 becomes U+FFFD, as browsers do.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: Option<&u8>) -> Option<u8> {
    (*b? as char).to_digit(16).map(|d| d as u8)
}

/// A `userId` as presence sends it: a JSON number when it is only ASCII
/// digits (at most 15 of them), a JSON string otherwise.
#[derive(Clone, Copy, Debug)]
pub struct UserId<'a>(pub &'a str);

impl UserId<'_> {
    /// The number this ID is sent as, if it is one.
    pub fn as_number(&self) -> Option<u64> {
        let s = self.0;
        if s.is_empty() || s.len() > 15 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }
}

impl Serialize for UserId<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.as_number() {
            Some(n) => s.serialize_u64(n),
            None => s.serialize_str(self.0),
        }
    }
}

/// An outbound presence message.
#[derive(Debug, Serialize)]
#[serde(
    tag = "type",
    rename_all = "SCREAMING_SNAKE_CASE",
    rename_all_fields = "camelCase"
)]
pub enum Message<'a> {
    /// First message on a new connection.
    ConnectionEstablished {
        /// The connection's user.
        user_id: UserId<'a>,
        /// `TS`.
        timestamp: &'a str,
        /// `ID-MS`, with `-2`, `-3`, ... on collision.
        connection_id: &'a str,
    },
    /// Second message on a new connection: every user online, itself included.
    OnlineUsers {
        /// The online users, in the order they came online.
        user_ids: &'a [UserId<'a>],
        /// `TS`.
        timestamp: &'a str,
    },
    /// A user's first connection opened (to every other user).
    UserOnline {
        /// The user.
        user_id: UserId<'a>,
        /// `TS`.
        timestamp: &'a str,
    },
    /// A user's last connection closed (to every other user).
    UserOffline {
        /// The user.
        user_id: UserId<'a>,
        /// `TS`.
        timestamp: &'a str,
    },
    /// Reply to `PING`.
    Pong {
        /// `TS`.
        timestamp: &'a str,
    },
    /// An error for the sender.
    Error {
        /// What went wrong.
        message: &'a str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Encode;
    const TS: &str = "2024-01-01T12:00:00.000Z";

    #[test]
    fn user_id_number_rule() {
        let enc = |id| {
            Message::UserOnline {
                user_id: UserId(id),
                timestamp: TS,
            }
            .encode()
        };
        assert!(enc("42").contains(r#""userId":42,"#));
        assert!(enc("007").contains(r#""userId":7,"#));
        assert!(enc("999999999999999").contains(r#""userId":999999999999999,"#));
        assert!(enc("1000000000000000").contains(r#""userId":"1000000000000000","#));
        assert!(enc("4a").contains(r#""userId":"4a","#));
        assert!(enc("-4").contains(r#""userId":"-4","#));
        assert!(enc("٣").contains(r#""userId":"٣","#));
        let ids = [UserId("1"), UserId("bob")];
        assert_eq!(
            Message::OnlineUsers {
                user_ids: &ids,
                timestamp: TS
            }
            .encode(),
            r#"{"type":"ONLINE_USERS","userIds":[1,"bob"],"timestamp":"2024-01-01T12:00:00.000Z"}"#
        );
        assert_eq!(
            Message::ConnectionEstablished {
                user_id: UserId("bob"),
                timestamp: TS,
                connection_id: "bob-5"
            }
            .encode(),
            r#"{"type":"CONNECTION_ESTABLISHED","userId":"bob","timestamp":"2024-01-01T12:00:00.000Z","connectionId":"bob-5"}"#
        );
    }

    #[test]
    fn query_user_id() {
        assert_eq!(user_id_from_query("userId=42"), Ok("42".into()));
        assert_eq!(
            user_id_from_query("a=1&userId=J%C3%BCrgen+X&userId=2"),
            Ok("Jürgen X".into())
        );
        assert_eq!(user_id_from_query("userId=%zz%4"), Ok("%zz%4".into()));
        assert_eq!(user_id_from_query("user%49d=x"), Ok("x".into()));
        assert_eq!(user_id_from_query(""), Err(UserIdError::Missing));
        assert_eq!(user_id_from_query("userid=1"), Err(UserIdError::Missing));
        assert_eq!(user_id_from_query("userId="), Err(UserIdError::Empty));
        assert_eq!(user_id_from_query("userId"), Err(UserIdError::Empty));
        assert_eq!(
            user_id_from_query(&format!("userId={}", "x".repeat(129))),
            Err(UserIdError::TooLong)
        );
        assert!(user_id_from_query(&format!("userId={}", "%C3%A9".repeat(128))).is_ok());
    }

    #[test]
    fn decodes() {
        assert_eq!(decode(r#"{"type":"PING"}"#), Ok(Command::Ping));
        assert_eq!(
            decode(r#"{"type":"ping"}"#),
            Err(ParseError::UnknownType("ping".into()))
        );
        assert_eq!(decode("nope"), Err(ParseError::NotJson));
    }
}
