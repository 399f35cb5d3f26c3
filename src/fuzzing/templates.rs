//! Realistic client messages for every protocol, with slots the fuzzer
//! fills from small pools so that joins, relays and collisions happen.

use crate::protocol::Protocol;

/// The routes the fuzzer opens connections on: the default ones.
pub use crate::protocol::DEFAULT_ROUTES as ROUTES;

/// Names used for sessions, stream rooms and users.
pub const NAMES: [&str; 6] = ["lobby", "a", "b", "42", "room 1", "\u{e9}t\u{e9}"];

/// A message template: `{0}`, `{1}`, `{2}` are replaced by pool values.
pub fn templates(protocol: Protocol) -> &'static [&'static str] {
    match protocol {
        Protocol::Scratch => &[
            r#"{"type":"join","sessionId":"{0}"}"#,
            r#"{"type":"sync","sessionId":"{0}","changes":{"ops":[{"insert":"when flag clicked","at":3}]}}"#,
            r#"{"type":"sync","sessionId":"{0}","changes":[1,2.5,null,"x"]}"#,
            r#"{"type":"leave"}"#,
            r#"{"type":"join","sessionId":""}"#,
            r#"{"type":"sync","changes":{}}"#,
        ],
        Protocol::Signal => &[
            r#"{"type":"create-room"}"#,
            r#"{"type":"join-room","roomId":"{0}"}"#,
            r#"{"type":"signal","roomId":"{0}","signal":{"type":"offer","sdp":"v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\n"}}"#,
            r#"{"type":"signal","roomId":"{0}","signal":{"candidate":"candidate:1 1 UDP 2122252543 192.168.1.2 54400 typ host","sdpMid":"0","sdpMLineIndex":0}}"#,
            r#"{"type":"chat-message","roomId":"{0}","message":"hello {1}","sender":"host"}"#,
            r#"{"type":"join-room","roomId":123456}"#,
        ],
        Protocol::Presence => &[
            r#"{"type":"PING"}"#,
            r#"{"type":"STATUS","userId":"{0}"}"#,
            r#"{"type":"ping"}"#,
        ],
        Protocol::Chat => &[
            r#"{"type":"ping"}"#,
            r#"{"type":"auth","payload":{"token":"{0}"}}"#,
            r#"{"type":"chat","payload":{"text":"hi from {0}","user":"{1}"}}"#,
            r#"{"type":"typing","payload":{"user":"{0}","typing":true}}"#,
            r#"{"type":"custom"}"#,
            r#"{"type":"chat","payload":null}"#,
        ],
        Protocol::Stream => &[
            r#"{"type":"join-room","roomId":"{0}","userId":"{1}","userName":"{2}"}"#,
            r#"{"type":"start-streaming","roomId":"{0}","userId":"{1}"}"#,
            r#"{"type":"stop-streaming","roomId":"{0}","userId":"{1}"}"#,
            r#"{"type":"chat-message","roomId":"{0}","userId":"{1}","content":"hello {2}"}"#,
            r#"{"type":"leave-room","roomId":"{0}"}"#,
            r#"{"type":"chat-message","roomId":"{0}","userId":"{1}","content":42}"#,
        ],
    }
}

/// Malformed messages every protocol must answer with its error message.
pub const MALFORMED: [&str; 8] = [
    "",
    "not json",
    "[1,2,3]",
    "\"a string\"",
    "{}",
    r#"{"type":42}"#,
    r#"{"type":"no-such-type"}"#,
    r#"{"type":"join","sessionId":"{0}""#,
];

/// Fills a template's slots with `values`, JSON-escaped.
pub fn fill(template: &str, values: [&str; 3]) -> String {
    let mut text = template.to_string();
    for (i, value) in values.iter().enumerate() {
        let escaped = serde_json::to_string(value).unwrap_or_default();
        let inner = escaped
            .get(1..escaped.len().saturating_sub(1))
            .unwrap_or("");
        text = text.replace(&format!("{{{i}}}"), inner);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_templates_are_json_objects_with_a_type() {
        for p in Protocol::ALL {
            for t in templates(p) {
                let text = fill(t, ["lobby", "x\"y", "\u{e9}"]);
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert!(v["type"].is_string(), "{text}");
            }
        }
    }
}
