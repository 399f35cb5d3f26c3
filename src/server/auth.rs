//! Signed identities, the IO part: the auth settings and reading the key
//! files into a [`Verifier`] at start.
//!
//! A secret file under 32 bytes, or an unreadable or unparsable key, is an
//! error (the caller exits with status 2). No error names key material.

use crate::protocol::token::{DEFAULT_LEEWAY_SECS, Key, TokenConfig, Verifier};
use std::path::{Path, PathBuf};

/// Seconds a connection whose token expired has to send a fresh one
/// (`--auth-grace`) before it is closed with 4401.
pub const DEFAULT_GRACE_SECS: u64 = 30;

/// Whether WebSocket upgrades need a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// No token is read; every client works as without auth (the mode
    /// when no key is configured).
    Off,
    /// Every upgrade needs a valid token (the default once a key is
    /// configured).
    Required,
    /// A token, if present, must be valid; none means anonymous.
    Optional,
}

/// The auth settings: each field is a flag (see `roomd --help`).
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct AuthConfig {
    /// HS256 shared secret for signed identities (at least 32 bytes)
    #[arg(long, value_name = "FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// PEM public key for signed identities (ES256, EdDSA or RS256; its
    /// kid is the file name without extension), repeatable
    #[arg(long = "jwt-public-key", value_name = "FILE", value_delimiter = ',')]
    pub jwt_public_keys: Vec<PathBuf>,
    /// The `aud` every token must carry
    #[arg(long = "jwt-audience", value_name = "AUD")]
    pub audience: Option<String>,
    /// The `iss` every token must carry
    #[arg(long = "jwt-issuer", value_name = "ISS")]
    pub issuer: Option<String>,
    /// Seconds of clock skew tolerated on a token's exp and nbf at the
    /// upgrade
    #[arg(long = "jwt-leeway", value_name = "SECS", default_value_t = DEFAULT_LEEWAY_SECS)]
    pub leeway_secs: u64,
    /// Whether upgrades need a token: required (the default once a key is
    /// configured) or optional (none means anonymous)
    #[arg(long = "auth", value_name = "MODE", value_enum)]
    pub mode: Option<AuthMode>,
    /// Seconds a connection whose token expired has to send a fresh one
    /// before it is closed with 4401
    #[arg(long = "auth-grace", value_name = "SECS", default_value_t = DEFAULT_GRACE_SECS)]
    pub grace_secs: u64,
}

impl Default for AuthConfig {
    /// No flags: auth off.
    fn default() -> Self {
        crate::server::Config::default().auth
    }
}

impl AuthConfig {
    /// Whether any key is configured.
    pub fn has_key(&self) -> bool {
        self.jwt_secret_file.is_some() || !self.jwt_public_keys.is_empty()
    }

    /// The mode in force: [`AuthMode::Off`] without a key, else the one
    /// asked for, [`AuthMode::Required`] by default.
    pub fn mode(&self) -> AuthMode {
        match (self.has_key(), self.mode) {
            (false, _) => AuthMode::Off,
            (true, Some(mode)) => mode,
            (true, None) => AuthMode::Required,
        }
    }
}

/// Reads the configured keys: `Ok(None)` when auth is off (no key, or
/// [`AuthMode::Off`] asked for). A mode asked for without a key, a secret
/// under 32 bytes, or a key file that cannot be read or parsed is an
/// error naming the file, never its content.
pub fn load(config: &AuthConfig) -> Result<Option<Verifier>, String> {
    if !config.has_key() {
        return match config.mode {
            Some(AuthMode::Required | AuthMode::Optional) => {
                Err("--auth needs --jwt-secret-file or --jwt-public-key".to_string())
            }
            _ => Ok(None),
        };
    }
    if config.mode() == AuthMode::Off {
        return Ok(None);
    }
    if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
        return Err("this build has no JWT crypto backend".to_string());
    }
    let mut keys = Vec::new();
    if let Some(path) = &config.jwt_secret_file {
        let bytes = read(path, "--jwt-secret-file")?;
        let key = Key::secret(kid(path), secret_of(&bytes))
            .map_err(|e| format!("--jwt-secret-file {}: {e}", path.display()))?;
        keys.push(key);
    }
    for path in &config.jwt_public_keys {
        let pem = read(path, "--jwt-public-key")?;
        let key = Key::public_pem(kid(path), &pem)
            .map_err(|e| format!("--jwt-public-key {}: {e}", path.display()))?;
        keys.push(key);
    }
    let token_config = TokenConfig {
        audience: config.audience.clone(),
        issuer: config.issuer.clone(),
        leeway_secs: config.leeway_secs,
    };
    Ok(Some(Verifier::new(keys, token_config)))
}

/// The secret in a secret file: its bytes, less one final line break when
/// the file is text (as `echo` and editors leave one). A binary secret is
/// taken whole.
fn secret_of(bytes: &[u8]) -> &[u8] {
    if std::str::from_utf8(bytes).is_err() {
        return bytes;
    }
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

/// A key's `kid`: its file name without the extension.
fn kid(path: &Path) -> Option<String> {
    path.file_stem().map(|s| s.to_string_lossy().into_owned())
}

/// Reads a key file; the error names the flag, the path and the IO error.
fn read(path: &Path, flag: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {flag} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::token::KeyError;

    fn data(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/auth")
            .join(name)
    }

    fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("roomd-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn no_key_is_off_and_loads_nothing() {
        let config = AuthConfig::default();
        assert_eq!(config.mode(), AuthMode::Off);
        assert!(load(&config).unwrap().is_none());
        let asked = AuthConfig {
            mode: Some(AuthMode::Optional),
            ..AuthConfig::default()
        };
        assert!(load(&asked).unwrap_err().contains("--auth needs"));
    }

    #[test]
    fn every_kind_of_key_loads_with_its_file_name_as_kid() {
        let config = AuthConfig {
            jwt_secret_file: Some(data("hs256.secret")),
            jwt_public_keys: vec![
                data("es256.pub.pem"),
                data("ed25519.pub.pem"),
                data("rs256.pub.pem"),
            ],
            audience: Some("roomd".into()),
            ..AuthConfig::default()
        };
        assert_eq!(config.mode(), AuthMode::Required);
        let verifier = load(&config).unwrap().unwrap();
        let kids: Vec<_> = verifier.keys().iter().map(|k| k.kid()).collect();
        assert_eq!(
            kids,
            [
                Some("hs256"),
                Some("es256.pub"),
                Some("ed25519.pub"),
                Some("rs256.pub")
            ]
        );
        assert_eq!(verifier.config().audience.as_deref(), Some("roomd"));
        assert_eq!(verifier.config().leeway_secs, DEFAULT_LEEWAY_SECS);
        let optional = AuthConfig {
            mode: Some(AuthMode::Optional),
            ..config
        };
        assert_eq!(optional.mode(), AuthMode::Optional);
    }

    #[test]
    fn a_short_secret_is_an_error_that_does_not_show_it() {
        let path = temp_file("short.secret", b"0123456789abcdefghijklmnopqrstu\n");
        let config = AuthConfig {
            jwt_secret_file: Some(path),
            ..AuthConfig::default()
        };
        let err = load(&config).unwrap_err();
        assert!(
            err.contains(&KeyError::SecretTooShort { len: 31 }.to_string()),
            "{err}"
        );
        assert!(!err.contains("0123"), "{err}");
    }

    #[test]
    fn a_text_secret_loses_its_final_line_break_only() {
        assert_eq!(secret_of(b"abc\r\n"), b"abc");
        assert_eq!(secret_of(b"abc\n\n"), b"abc\n");
        assert_eq!(secret_of(b"\xff\n"), b"\xff\n");
    }

    #[test]
    fn unreadable_and_unparsable_keys_are_errors() {
        let missing = AuthConfig {
            jwt_public_keys: vec![data("no-such.pem")],
            ..AuthConfig::default()
        };
        assert!(
            load(&missing)
                .unwrap_err()
                .starts_with("cannot read --jwt-public-key")
        );
        let private = AuthConfig {
            jwt_public_keys: vec![data("es256.key.pem")],
            ..AuthConfig::default()
        };
        let err = load(&private).unwrap_err();
        assert!(
            err.contains("private key") && !err.contains("BEGIN"),
            "{err}"
        );
        let secret_as_pem = AuthConfig {
            jwt_public_keys: vec![data("hs256.secret")],
            ..AuthConfig::default()
        };
        assert!(
            load(&secret_as_pem)
                .unwrap_err()
                .contains("not a PEM public key")
        );
    }
}
