//! [`Verifier`]: the keys and settings, and the checks in their order.

use super::{DEFAULT_LEEWAY_SECS, Identity, Key, MAX_TOKEN_BYTES, Refusal, claims, compact};
use jsonwebtoken::Algorithm;
use std::str::FromStr;

/// What a token must say besides being well signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenConfig {
    /// Required `aud` (`--jwt-audience`); `None` (the default) checks none.
    pub audience: Option<String>,
    /// Required `iss` (`--jwt-issuer`); `None` (the default) checks none.
    pub issuer: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf` (`--jwt-leeway`), default
    /// [`DEFAULT_LEEWAY_SECS`].
    pub leeway_secs: u64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            audience: None,
            issuer: None,
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }
}

/// Verifies tokens against a fixed set of keys. Pure: `now` is an argument.
#[derive(Clone, Debug)]
pub struct Verifier {
    keys: Vec<Key>,
    config: TokenConfig,
}

/// The algorithms roomd accepts, each only with a key of its own.
const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::HS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
    Algorithm::RS256,
];

impl Verifier {
    /// A verifier with `keys` (at least one, or every token is refused as
    /// [`Refusal::Algorithm`]) and `config`.
    pub fn new(keys: Vec<Key>, config: TokenConfig) -> Verifier {
        Verifier { keys, config }
    }

    /// The keys, in the order given.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The claims settings.
    pub fn config(&self) -> &TokenConfig {
        &self.config
    }

    /// Checks `token` at `now_secs` (Unix seconds), in this order: size,
    /// three base64url parts, `alg` (that of a key the token may use: the
    /// key named by `kid` if one is, else any key), signature, then the
    /// claims (`exp`, `nbf`, `iss`, `aud`, `sub`, `rooms`).
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<Identity, Refusal> {
        if token.is_empty() {
            return Err(Refusal::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Refusal::TooLarge);
        }
        let parts = compact::split(token)?;
        let alg = Algorithm::from_str(&parts.alg)
            .ok()
            .filter(|alg| ALGORITHMS.contains(alg))
            .ok_or(Refusal::Algorithm)?;
        let named = |key: &&Key| parts.kid.is_some() && key.kid == parts.kid;
        let pool: Vec<&Key> = if self.keys.iter().any(|k| named(&k)) {
            self.keys.iter().filter(named).collect()
        } else {
            self.keys.iter().collect()
        };
        let mut candidates = pool.into_iter().filter(|key| key.alg == alg).peekable();
        if candidates.peek().is_none() {
            return Err(Refusal::Algorithm);
        }
        let signed = candidates.any(|key| {
            jsonwebtoken::crypto::verify(
                parts.signature,
                parts.signing_input.as_bytes(),
                &key.decoding,
                alg,
            )
            .unwrap_or(false)
        });
        if !signed {
            return Err(Refusal::Signature);
        }
        claims::check(&parts.payload, &self.config, now_secs)
    }
}
