//! `chat`: broadcast chat service (see PROTOCOLS.md).

use super::Encode;
use super::envelope::{Fields, ParseError};
use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The only error text of this protocol.
pub const INVALID_FORMAT: &str = "Invalid message format";

/// An inbound chat command. Every message with a string `type` is valid.
#[derive(Debug)]
pub enum Command<'a> {
    /// `{"type":"ping"}`.
    Ping,
    /// `{"type":"auth","payload":P}`: the seed's mock, always a success
    /// without auth; with auth the server layer verifies the token and the
    /// engine gets it as [`crate::engine::Input::Auth`] instead, so one
    /// reaching the route carried no token.
    Auth,
    /// `{"type":"chat","payload":P}`: broadcast to every connection.
    Chat {
        /// The payload, verbatim (`None`: absent, sent as `null`).
        payload: Option<&'a RawValue>,
    },
    /// Any other type: echoed to the sender.
    Echo {
        /// The received type.
        ty: Cow<'a, str>,
        /// The payload, verbatim (`None`: absent, sent as `null`).
        payload: Option<&'a RawValue>,
    },
}

/// Decodes one inbound text message. Its only errors are "not JSON", "not
/// an object" and "no string `type`", all answered with [`INVALID_FORMAT`].
pub fn decode(text: &str) -> Result<Command<'_>, ParseError> {
    let (f, ty) = Fields::parse(text)?;
    Ok(match &*ty {
        "ping" => Command::Ping,
        "auth" => Command::Auth,
        "chat" => Command::Chat { payload: f.payload },
        _ => Command::Echo {
            ty,
            payload: f.payload,
        },
    })
}

/// The `message` of a successful `auth` reply (the seed's).
pub const AUTHENTICATED: &str = "Authenticated";

/// The payload of the `auth` reply.
#[derive(Debug, Serialize)]
pub struct AuthResult<'a> {
    /// Whether the token was accepted.
    pub success: bool,
    /// [`AUTHENTICATED`], or why the token was refused.
    pub message: &'a str,
}

/// The payload of `system` and `error` messages.
#[derive(Debug, Serialize)]
pub struct Notice<'a> {
    /// The text.
    pub message: &'a str,
}

/// An outbound chat message: `{"type":T,"payload":P,"timestamp":TS}`.
#[derive(Debug, Serialize)]
pub struct Message<'a, P: Serialize> {
    /// The type.
    #[serde(rename = "type")]
    pub ty: &'a str,
    /// The payload.
    pub payload: P,
    /// `TS`.
    pub timestamp: &'a str,
}

/// `{"type":"pong","timestamp":TS}`.
#[derive(Debug, Serialize)]
pub struct Pong<'a> {
    /// Always `"pong"`.
    #[serde(rename = "type")]
    pub ty: &'static str,
    /// `TS`.
    pub timestamp: &'a str,
}

/// The welcome sent on open.
pub fn welcome(ts: &str) -> String {
    let payload = Notice {
        message: "Connected to WebSocket server",
    };
    Message {
        ty: "system",
        payload,
        timestamp: ts,
    }
    .encode()
}

/// The reply to `ping`.
pub fn pong(ts: &str) -> String {
    Pong {
        ty: "pong",
        timestamp: ts,
    }
    .encode()
}

/// The successful reply to `auth`.
pub fn auth_ok(ts: &str) -> String {
    auth_reply(true, AUTHENTICATED, ts)
}

/// The reply to `auth`: `payload.success` and `payload.message`.
pub fn auth_reply(success: bool, message: &str, ts: &str) -> String {
    let payload = AuthResult { success, message };
    Message {
        ty: "auth",
        payload,
        timestamp: ts,
    }
    .encode()
}

/// A message with a verbatim payload (broadcast `chat` or an echo).
pub fn with_payload(ty: &str, payload: Option<&RawValue>, ts: &str) -> String {
    Message {
        ty,
        payload,
        timestamp: ts,
    }
    .encode()
}

/// An error for the sender.
pub fn error(message: &str, ts: &str) -> String {
    Message {
        ty: "error",
        payload: Notice { message },
        timestamp: ts,
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    const TS: &str = "2024-01-01T12:00:00.000Z";

    #[test]
    fn decodes_and_encodes() {
        assert_eq!(
            welcome(TS),
            r#"{"type":"system","payload":{"message":"Connected to WebSocket server"},"timestamp":"2024-01-01T12:00:00.000Z"}"#
        );
        assert_eq!(
            pong(TS),
            r#"{"type":"pong","timestamp":"2024-01-01T12:00:00.000Z"}"#
        );
        assert_eq!(
            auth_ok(TS),
            r#"{"type":"auth","payload":{"success":true,"message":"Authenticated"},"timestamp":"2024-01-01T12:00:00.000Z"}"#
        );
        assert_eq!(
            auth_reply(false, "token refused: expired", TS),
            r#"{"type":"auth","payload":{"success":false,"message":"token refused: expired"},"timestamp":"2024-01-01T12:00:00.000Z"}"#
        );
        match decode(r#"{"type":"t\"x","payload":[1, {"a":null}]}"#) {
            Ok(Command::Echo { ty, payload }) => assert_eq!(
                with_payload(&ty, payload, TS),
                r#"{"type":"t\"x","payload":[1, {"a":null}],"timestamp":"2024-01-01T12:00:00.000Z"}"#
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode(r#"{"type":"chat"}"#),
            Ok(Command::Chat { payload: None })
        ));
        assert_eq!(decode("[]").unwrap_err(), ParseError::NotObject);
        assert_eq!(
            error(INVALID_FORMAT, TS),
            r#"{"type":"error","payload":{"message":"Invalid message format"},"timestamp":"2024-01-01T12:00:00.000Z"}"#
        );
    }
}
