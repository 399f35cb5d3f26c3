//! The JWS compact form: three base64url parts, and the protected header.

use super::Refusal;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A token split into its parts, the header decoded.
#[derive(Debug)]
pub(super) struct Compact<'a> {
    /// The header's `alg`.
    pub alg: String,
    /// The header's `kid`, if any.
    pub kid: Option<String>,
    /// `header.payload`: what the signature covers.
    pub signing_input: &'a str,
    /// The decoded payload (the claims' JSON).
    pub payload: Vec<u8>,
    /// The signature, still in base64url (empty for `alg: none`).
    pub signature: &'a str,
}

/// The header fields looked at. Duplicate names are refused by serde.
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Extensions that must be understood: roomd understands none.
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// Splits `token` into three base64url parts (no padding) and decodes the
/// header and payload.
pub(super) fn split(token: &str) -> Result<Compact<'_>, Refusal> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let header_json = decode(header)?;
    let payload = decode(payload)?;
    decode(signature)?;
    let header: Header = object(&header_json)?;
    if header.crit.is_some() {
        return Err(Refusal::Malformed);
    }
    let signing_input = &token[..token.len() - signature.len() - 1];
    Ok(Compact {
        alg: header.alg,
        kid: header.kid,
        signing_input,
        payload,
        signature,
    })
}

/// Parses a JSON object into `T`: serde would also fill a struct from an
/// array, and refuses duplicate names.
pub(super) fn object<T: DeserializeOwned>(json: &[u8]) -> Result<T, Refusal> {
    if json.trim_ascii_start().first() != Some(&b'{') {
        return Err(Refusal::Malformed);
    }
    serde_json::from_slice(json).map_err(|_| Refusal::Malformed)
}

/// Decodes one base64url part (no padding, canonical trailing bits).
fn decode(part: &str) -> Result<Vec<u8>, Refusal> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| Refusal::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn splits_a_token() {
        let token = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"HS256","kid":"k1"}"#),
            b64("{}")
        );
        let c = split(&token).unwrap();
        assert_eq!(c.alg, "HS256");
        assert_eq!(c.kid.as_deref(), Some("k1"));
        assert_eq!(c.payload, b"{}");
        assert_eq!(c.signature, "c2ln");
        assert_eq!(format!("{}.c2ln", c.signing_input), token);
    }

    #[test]
    fn an_empty_signature_splits_for_alg_none() {
        let token = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64("{}"));
        assert_eq!(split(&token).unwrap().signature, "");
    }

    #[test]
    fn refuses_what_is_not_three_base64url_parts() {
        let h = b64(r#"{"alg":"HS256"}"#);
        let p = b64("{}");
        for token in [
            String::new(),
            "abc".to_string(),
            format!("{h}.{p}"),
            format!("{h}.{p}.c2ln.c2ln"),
            format!("{h}.{p}.c2ln="),
            format!("{h}.{p}.c2+n"),
            format!("{h}=.{p}.c2ln"),
            format!("{h}.{p} .c2ln"),
            format!("{h}.a.c2ln"),
        ] {
            assert_eq!(split(&token).unwrap_err(), Refusal::Malformed, "{token}");
        }
    }

    #[test]
    fn refuses_bad_headers() {
        let p = b64("{}");
        for header in [
            "[]",
            r#"["HS256"]"#,
            "not json",
            r#"{"kid":"x"}"#,
            r#"{"alg":1}"#,
            r#"{"alg":"HS256","alg":"none"}"#,
            r#"{"alg":"HS256","crit":["exp"]}"#,
            r#"{"alg":"HS256","kid":7}"#,
        ] {
            let token = format!("{}.{p}.c2ln", b64(header));
            assert_eq!(split(&token).unwrap_err(), Refusal::Malformed, "{header}");
        }
    }
}
