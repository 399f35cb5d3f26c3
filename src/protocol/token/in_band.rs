//! The in-band token refresh: `{"type":"auth","token":T}` (or, as the
//! chat seed's clients send it, `{"type":"auth","payload":{"token":T}}`),
//! recognised so that the server verifies it and the engine gets the
//! result, never the token.

use serde_json::Value;

/// `Some(token)` if `text` is an `auth` message (the token empty when it
/// carries none or not as a string, which verification refuses as
/// missing); `None` for any other text, which goes to the engine as it is.
pub fn auth_message_token(text: &str) -> Option<String> {
    // Most messages are not `auth`: no parse for them.
    if !text.contains("\"auth\"") {
        return None;
    }
    let message: Value = serde_json::from_str(text).ok()?;
    if message.get("type")?.as_str()? != "auth" {
        return None;
    }
    let token = message
        .get("token")
        .or_else(|| message.get("payload")?.get("token"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_token_in_either_shape() {
        let token = |t: &str| auth_message_token(t);
        assert_eq!(
            token(r#"{"type":"auth","token":"a.b.c"}"#),
            Some("a.b.c".into())
        );
        assert_eq!(
            token(r#"{"type":"auth","payload":{"token":"a.b.c"}}"#),
            Some("a.b.c".into())
        );
        assert_eq!(token(r#"{"type":"auth"}"#), Some(String::new()));
        assert_eq!(token(r#"{"type":"auth","token":7}"#), Some(String::new()));
        assert_eq!(token(r#"{"type":"chat","payload":"auth"}"#), None);
        assert_eq!(token(r#"{"type":"chat","payload":"\"auth\""}"#), None);
        assert_eq!(token("not json \"auth\""), None);
    }
}
