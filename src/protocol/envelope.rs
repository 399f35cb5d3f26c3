//! The envelope every protocol shares: a JSON object with a string `type`.
//!
//! [`Fields::parse`] reads an inbound text message in one pass, keeping every
//! field any protocol uses as the exact JSON text it was received as
//! ([`RawValue`]), so that verbatim fields are forwarded byte for byte.
//! Unknown fields are skipped; a repeated field keeps its last value (as
//! JavaScript's `JSON.parse` does).

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Longest `sessionId`, `roomId`, `userId`, `userName` accepted, in characters.
pub const MAX_ID_CHARS: usize = 128;

/// Why an inbound message was refused before any state was touched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The text is not JSON.
    NotJson,
    /// Valid JSON, but not an object.
    NotObject,
    /// An object without a string `type`.
    NoType,
    /// A `type` this protocol does not know.
    UnknownType(String),
    /// A required field is missing or has the wrong type or length.
    Field(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotJson => f.write_str("Invalid JSON"),
            ParseError::NotObject => f.write_str("Message must be a JSON object"),
            ParseError::NoType => f.write_str("Missing or invalid message type"),
            ParseError::UnknownType(t) => write!(f, "Unknown message type: {t}"),
            ParseError::Field(name) => write!(f, "Missing or invalid field: {name}"),
        }
    }
}

/// The fields of an inbound message that some protocol reads, each as the
/// raw JSON text received.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fields<'a> {
    /// `type`.
    pub ty: Option<&'a RawValue>,
    /// `sessionId` (scratch).
    pub session_id: Option<&'a RawValue>,
    /// `changes` (scratch).
    pub changes: Option<&'a RawValue>,
    /// `roomId` (signal, stream).
    pub room_id: Option<&'a RawValue>,
    /// `userId` (stream).
    pub user_id: Option<&'a RawValue>,
    /// `userName` (stream).
    pub user_name: Option<&'a RawValue>,
    /// `content` (stream).
    pub content: Option<&'a RawValue>,
    /// `payload` (chat).
    pub payload: Option<&'a RawValue>,
}

impl<'a> Fields<'a> {
    /// Parses `text` as a JSON object with a string `type`; returns the
    /// fields and that type.
    pub fn parse(text: &'a str) -> Result<(Fields<'a>, Cow<'a, str>), ParseError> {
        let fields: Fields<'a> = match serde_json::from_str(text) {
            Ok(fields) => fields,
            Err(_) => {
                return Err(match serde_json::from_str::<IgnoredAny>(text) {
                    Ok(_) => ParseError::NotObject,
                    Err(_) => ParseError::NotJson,
                });
            }
        };
        let ty = fields.ty.and_then(json_str).ok_or(ParseError::NoType)?;
        Ok((fields, ty))
    }

    /// A required string field.
    pub fn string(
        field: Option<&'a RawValue>,
        name: &'static str,
    ) -> Result<Cow<'a, str>, ParseError> {
        field.and_then(json_str).ok_or(ParseError::Field(name))
    }

    /// A required identifier: a non-empty string of at most
    /// [`MAX_ID_CHARS`] characters.
    pub fn id(field: Option<&'a RawValue>, name: &'static str) -> Result<Cow<'a, str>, ParseError> {
        let s = Self::string(field, name)?;
        if s.is_empty() || s.chars().count() > MAX_ID_CHARS {
            return Err(ParseError::Field(name));
        }
        Ok(s)
    }
}

/// The string a raw JSON value holds, if it is a string.
fn json_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    match serde_json::from_str::<&str>(text) {
        Ok(s) => Some(Cow::Borrowed(s)),
        // Escapes need an owned copy.
        Err(_) => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
}

/// A field name, matched without allocating.
enum Key {
    Type,
    SessionId,
    Changes,
    RoomId,
    UserId,
    UserName,
    Content,
    Payload,
    Other,
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "type" => Key::Type,
                    "sessionId" => Key::SessionId,
                    "changes" => Key::Changes,
                    "roomId" => Key::RoomId,
                    "userId" => Key::UserId,
                    "userName" => Key::UserName,
                    "content" => Key::Content,
                    "payload" => Key::Payload,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> serde::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut f = Fields::default();
                while let Some(key) = map.next_key::<Key>()? {
                    let slot = match key {
                        Key::Type => &mut f.ty,
                        Key::SessionId => &mut f.session_id,
                        Key::Changes => &mut f.changes,
                        Key::RoomId => &mut f.room_id,
                        Key::UserId => &mut f.user_id,
                        Key::UserName => &mut f.user_name,
                        Key::Content => &mut f.content,
                        Key::Payload => &mut f.payload,
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value::<&'de RawValue>()?);
                }
                Ok(f)
            }
        }
        d.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ParseError {
        Fields::parse(text)
            .err()
            .unwrap_or_else(|| panic!("{text} parsed"))
    }

    #[test]
    fn classifies_malformed_messages() {
        assert_eq!(err("{"), ParseError::NotJson);
        assert_eq!(err("{} x"), ParseError::NotJson);
        assert_eq!(err("[1,2]"), ParseError::NotObject);
        assert_eq!(err("\"type\""), ParseError::NotObject);
        assert_eq!(err("null"), ParseError::NotObject);
        assert_eq!(err("{}"), ParseError::NoType);
        assert_eq!(err(r#"{"type":3}"#), ParseError::NoType);
        assert_eq!(err(r#"{"type":null}"#), ParseError::NoType);
    }

    #[test]
    fn keeps_raw_fields_and_last_duplicate() {
        let text = r#"{"type":"a\u0062","x":[1],"changes": {"b":1.50, "a":[]} ,"type":"sync"}"#;
        let (f, ty) = Fields::parse(text).unwrap();
        assert_eq!(ty, "sync");
        assert_eq!(f.changes.unwrap().get(), r#"{"b":1.50, "a":[]}"#);
    }

    #[test]
    fn ids_are_bounded() {
        let ok = format!(r#"{{"type":"t","roomId":"{}"}}"#, "é".repeat(128));
        let (f, _) = Fields::parse(&ok).unwrap();
        assert!(Fields::id(f.room_id, "roomId").is_ok());
        let long = format!(r#"{{"type":"t","roomId":"{}"}}"#, "a".repeat(129));
        let (f, _) = Fields::parse(&long).unwrap();
        assert_eq!(
            Fields::id(f.room_id, "roomId"),
            Err(ParseError::Field("roomId"))
        );
        let (f, _) = Fields::parse(r#"{"type":"t","roomId":"","userId":5}"#).unwrap();
        assert_eq!(
            Fields::id(f.room_id, "roomId"),
            Err(ParseError::Field("roomId"))
        );
        assert_eq!(
            Fields::id(f.user_id, "userId"),
            Err(ParseError::Field("userId"))
        );
        assert_eq!(
            Fields::id(f.session_id, "sessionId"),
            Err(ParseError::Field("sessionId"))
        );
    }
}
