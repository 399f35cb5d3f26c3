//! An engine output as `roomd replay` prints it: one JSON object per line
//! with the connection, the kind and the payload.

use crate::engine::{ConnId, Output};
use serde::Serialize;

/// One output, in the printable form `{"conn":N,"kind":K,"payload":P}`.
///
/// The payload is the text for `send`, `{"code":C,"reason":R}` for `close`
/// and `null` for `ping` and `terminate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Action {
    /// The connection the output is for.
    pub conn: u64,
    /// `send`, `ping`, `close` or `terminate`.
    pub kind: &'static str,
    /// The kind's payload (see the type's docs).
    pub payload: serde_json::Value,
}

impl From<&Output> for Action {
    fn from(output: &Output) -> Self {
        let (conn, kind, payload) = match output {
            Output::Send { conn, text } => (conn, "send", serde_json::Value::from(&**text)),
            Output::Ping { conn } => (conn, "ping", serde_json::Value::Null),
            Output::Close { conn, reason } => (
                conn,
                "close",
                serde_json::json!({ "code": reason.code(), "reason": reason.reason() }),
            ),
            Output::Terminate { conn } => (conn, "terminate", serde_json::Value::Null),
            Output::Bus { id, command } => (
                &ConnId(0),
                "bus",
                serde_json::json!({ "id": id, "command": command }),
            ),
        };
        Action {
            conn: conn.0,
            kind,
            payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ConnId;
    use crate::protocol::close::CloseReason;

    #[test]
    fn prints_connection_kind_and_payload() {
        let send = Output::Send {
            conn: ConnId(3),
            text: "{\"type\":\"pong\"}".into(),
        };
        assert_eq!(
            serde_json::to_string(&Action::from(&send)).unwrap(),
            r#"{"conn":3,"kind":"send","payload":"{\"type\":\"pong\"}"}"#
        );
        let close = Output::Close {
            conn: ConnId(4),
            reason: CloseReason::RateLimited,
        };
        assert_eq!(
            serde_json::to_string(&Action::from(&close)).unwrap(),
            r#"{"conn":4,"kind":"close","payload":{"code":1008,"reason":"rate limit exceeded"}}"#
        );
        let ping = Action::from(&Output::Ping { conn: ConnId(5) });
        assert_eq!((ping.kind, ping.payload), ("ping", serde_json::Value::Null));
    }
}
