//! Why a token was not accepted, with a stable name for metrics and logs.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a token was refused. [`Refusal::name`] is stable (metric labels);
/// [`Refusal::status`] is the HTTP answer to a refused upgrade. Serialised
/// (in the journal) as its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// No token where one is required (or an empty one).
    Missing,
    /// Longer than [`super::MAX_TOKEN_BYTES`].
    TooLarge,
    /// Not three base64url parts, a header or claims that are not a JSON
    /// object, an unsupported `crit` header, or a claim of the wrong type.
    Malformed,
    /// `alg` is `none`, unsupported, or not the algorithm of any key the
    /// token may be checked with.
    Algorithm,
    /// The signature does not verify with the key(s) of its algorithm.
    Signature,
    /// No `exp` claim.
    NoExpiry,
    /// `exp` is past (beyond the leeway).
    Expired,
    /// `nbf` is ahead (beyond the leeway).
    NotYetValid,
    /// `aud` does not name the configured audience.
    Audience,
    /// `iss` is not the configured issuer.
    Issuer,
    /// `sub` is missing, not a string, empty or too long.
    Subject,
    /// A valid token that does not allow what was asked (a `?userId=` other
    /// than its `sub`, a room outside its `rooms` claim). Never given by
    /// [`super::Verifier::verify`]: the callers that decide it use it.
    Forbidden,
}

impl Refusal {
    /// Every refusal, in a fixed order (for per-reason counters).
    pub const ALL: [Refusal; 12] = [
        Refusal::Missing,
        Refusal::TooLarge,
        Refusal::Malformed,
        Refusal::Algorithm,
        Refusal::Signature,
        Refusal::NoExpiry,
        Refusal::Expired,
        Refusal::NotYetValid,
        Refusal::Audience,
        Refusal::Issuer,
        Refusal::Subject,
        Refusal::Forbidden,
    ];

    /// A short stable name, e.g. `expired` (a metric label).
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::TooLarge => "too_large",
            Refusal::Malformed => "malformed",
            Refusal::Algorithm => "algorithm",
            Refusal::Signature => "signature",
            Refusal::NoExpiry => "no_expiry",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::Audience => "audience",
            Refusal::Issuer => "issuer",
            Refusal::Subject => "subject",
            Refusal::Forbidden => "forbidden",
        }
    }

    /// The HTTP status of a refused upgrade: `401` (answered with
    /// `WWW-Authenticate: Bearer`) when there is no valid token, `403` when
    /// a valid token does not allow what was asked.
    pub fn status(self) -> u16 {
        match self {
            Refusal::Forbidden => 403,
            _ => 401,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_only_forbidden_is_403() {
        let mut names: Vec<&str> = Refusal::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Refusal::ALL.len());
        for r in Refusal::ALL {
            let expected = if r == Refusal::Forbidden { 403 } else { 401 };
            assert_eq!(r.status(), expected, "{r}");
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.name()));
            assert_eq!(serde_json::from_str::<Refusal>(&json).unwrap(), r);
        }
    }
}
