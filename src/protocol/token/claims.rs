//! The claims checks, after the signature: `exp`, `nbf`, `iss`, `aud`,
//! `sub`, `rooms`, all against the `now` given.

use super::{Identity, MAX_SUBJECT_CHARS, Refusal, TokenConfig, compact};
use serde::Deserialize;
use serde_json::Value;

/// The claims looked at; others are ignored. Duplicate names are refused.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    iss: Option<Value>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    rooms: Option<Vec<String>>,
}

/// Checks the claims' JSON at `now_secs` and gives the identity.
pub(super) fn check(
    payload: &[u8],
    config: &TokenConfig,
    now_secs: u64,
) -> Result<Identity, Refusal> {
    let claims: Claims = compact::object(payload)?;
    let leeway = config.leeway_secs;
    let exp = match &claims.exp {
        None | Some(Value::Null) => return Err(Refusal::NoExpiry),
        Some(v) => seconds(v)?,
    };
    // RFC 7519 §4.1.4: valid only *before* `exp`.
    if now_secs >= exp.saturating_add(leeway) {
        return Err(Refusal::Expired);
    }
    let nbf = match claims.nbf.as_ref().filter(|v| !v.is_null()) {
        Some(v) => seconds(v)?,
        None => 0,
    };
    if nbf > now_secs.saturating_add(leeway) {
        return Err(Refusal::NotYetValid);
    }
    let iss = claims.iss.as_ref().and_then(Value::as_str);
    if config
        .issuer
        .as_ref()
        .is_some_and(|issuer| iss != Some(issuer.as_str()))
    {
        return Err(Refusal::Issuer);
    }
    let aud = claims.aud.as_ref();
    if config
        .audience
        .as_ref()
        .is_some_and(|audience| !names(aud, audience))
    {
        return Err(Refusal::Audience);
    }
    let sub = match claims.sub {
        Some(Value::String(sub)) if !sub.is_empty() && sub.chars().count() <= MAX_SUBJECT_CHARS => {
            sub
        }
        _ => return Err(Refusal::Subject),
    };
    Ok(Identity {
        sub,
        exp,
        rooms: claims.rooms,
    })
}

/// A NumericDate (RFC 7519 §2): a non-negative number of seconds; a
/// fraction is dropped.
fn seconds(value: &Value) -> Result<u64, Refusal> {
    let Value::Number(n) = value else {
        return Err(Refusal::Malformed);
    };
    if let Some(secs) = n.as_u64() {
        return Ok(secs);
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f >= 0.0 => Ok(f as u64),
        _ => Err(Refusal::Malformed),
    }
}

/// Whether an `aud` claim (a string or a list of strings) names `audience`.
fn names(aud: Option<&Value>, audience: &str) -> bool {
    match aud {
        Some(Value::String(a)) => a == audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn config() -> TokenConfig {
        TokenConfig {
            audience: Some("roomd".into()),
            issuer: Some("https://id.example".into()),
            leeway_secs: 30,
        }
    }

    fn check_json(json: &str) -> Result<Identity, Refusal> {
        check(json.as_bytes(), &config(), NOW)
    }

    fn claims(extra: &str) -> String {
        format!(
            r#"{{"sub":"u1","exp":{},"iss":"https://id.example","aud":"roomd"{extra}}}"#,
            NOW + 60
        )
    }

    #[test]
    fn a_complete_set_passes() {
        let id = check_json(&claims(r#","rooms":["a","b-*"]"#)).unwrap();
        assert_eq!(id.sub, "u1");
        assert_eq!(id.exp, NOW + 60);
        assert_eq!(id.rooms, Some(vec!["a".to_string(), "b-*".to_string()]));
        assert_eq!(check_json(&claims("")).unwrap().rooms, None);
    }

    #[test]
    fn exp_is_required_and_a_number() {
        assert_eq!(check_json(r#"{"sub":"u"}"#), Err(Refusal::NoExpiry));
        assert_eq!(
            check_json(r#"{"sub":"u","exp":null}"#),
            Err(Refusal::NoExpiry)
        );
        assert_eq!(
            check_json(r#"{"sub":"u","exp":"1"}"#),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            check_json(r#"{"sub":"u","exp":-5}"#),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn leeway_applies_to_exp_and_nbf() {
        let with = |exp: u64, nbf: u64| {
            let json = format!(
                r#"{{"sub":"u","exp":{exp},"nbf":{nbf},"iss":"https://id.example","aud":"roomd"}}"#
            );
            check_json(&json).map(|id| id.exp)
        };
        assert_eq!(with(NOW - 29, 0), Ok(NOW - 29));
        assert_eq!(with(NOW - 30, 0), Err(Refusal::Expired));
        assert_eq!(with(NOW + 100, NOW + 30), Ok(NOW + 100));
        assert_eq!(with(NOW + 100, NOW + 31), Err(Refusal::NotYetValid));
        let float = r#"{"sub":"u","exp":1800000100.9,"iss":"https://id.example","aud":"roomd"}"#;
        assert_eq!(check_json(float).map(|id| id.exp), Ok(NOW + 100));
    }

    #[test]
    fn issuer_and_audience_when_configured() {
        let json = |iss: &str, aud: &str| {
            format!(
                r#"{{"sub":"u","exp":{},"iss":{iss},"aud":{aud}}}"#,
                NOW + 60
            )
        };
        assert_eq!(
            check_json(&json(r#""other""#, r#""roomd""#)),
            Err(Refusal::Issuer)
        );
        assert_eq!(
            check_json(&json("null", r#""roomd""#)),
            Err(Refusal::Issuer)
        );
        assert_eq!(
            check_json(&json(r#""https://id.example""#, r#""x""#)),
            Err(Refusal::Audience)
        );
        assert_eq!(
            check_json(&json(r#""https://id.example""#, "[]")),
            Err(Refusal::Audience)
        );
        assert!(check_json(&json(r#""https://id.example""#, r#"["x","roomd"]"#)).is_ok());
        let open = TokenConfig::default();
        let none = format!(r#"{{"sub":"u","exp":{},"aud":"elsewhere"}}"#, NOW + 60);
        assert!(check(none.as_bytes(), &open, NOW).is_ok());
    }

    #[test]
    fn subject_is_a_short_non_empty_string() {
        let with_sub = |sub: &str| {
            check_json(&format!(
                r#"{{"sub":{sub},"exp":{},"iss":"https://id.example","aud":"roomd"}}"#,
                NOW + 60
            ))
        };
        assert_eq!(with_sub(r#""""#), Err(Refusal::Subject));
        assert_eq!(with_sub("42"), Err(Refusal::Subject));
        assert_eq!(with_sub("null"), Err(Refusal::Subject));
        let long = "é".repeat(MAX_SUBJECT_CHARS);
        assert_eq!(with_sub(&format!("\"{long}\"")).unwrap().sub, long);
        assert_eq!(with_sub(&format!("\"{long}x\"")), Err(Refusal::Subject));
    }

    #[test]
    fn malformed_claims() {
        assert_eq!(check_json("[]"), Err(Refusal::Malformed));
        assert_eq!(
            check_json(r#"[1800000100,null,"u"]"#),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            check_json(&claims(r#","rooms":"a""#)),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            check_json(&claims(r#","rooms":[1]"#)),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            check_json(&claims(r#","sub":"dup""#)),
            Err(Refusal::Malformed)
        );
    }
}
