//! Verification keys: an HS256 secret or a PEM public key, each with the
//! one algorithm it verifies.

use super::MIN_SECRET_BYTES;
use aws_lc_rs::signature::{self as lc, ParsedPublicKey, VerificationAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::fmt;

/// One verification key. Its algorithm is fixed by the key, never by a
/// token. `Debug` shows no key material.
#[derive(Clone, Debug)]
pub struct Key {
    /// The name a token's `kid` header picks it by, if any.
    pub(super) kid: Option<String>,
    /// The algorithm it verifies.
    pub(super) alg: Algorithm,
    /// The key, as the crate's verifier takes it.
    pub(super) decoding: DecodingKey,
}

/// How a PEM key of one kind is read, the algorithm it gets, and the
/// check that it really is such a key.
type PemKind = (
    fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>,
    Algorithm,
    &'static dyn VerificationAlgorithm,
);

/// The PEM public keys roomd takes, tried in this order.
const PEM_KINDS: [PemKind; 3] = [
    (
        DecodingKey::from_ec_pem,
        Algorithm::ES256,
        &lc::ECDSA_P256_SHA256_FIXED,
    ),
    (DecodingKey::from_ed_pem, Algorithm::EdDSA, &lc::ED25519),
    (
        DecodingKey::from_rsa_pem,
        Algorithm::RS256,
        &lc::RSA_PKCS1_2048_8192_SHA256,
    ),
];

/// Why a key could not be used. The text never contains key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// An HS256 secret shorter than [`MIN_SECRET_BYTES`].
    SecretTooShort {
        /// The secret's length in bytes.
        len: usize,
    },
    /// PEM text holding a private key (give roomd only the public key).
    PrivateKey,
    /// Not a PEM P-256, Ed25519 or RSA (2048 to 8192 bits) public key.
    Unsupported,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::SecretTooShort { len } => write!(
                f,
                "the HS256 secret has {len} bytes; at least {MIN_SECRET_BYTES} are needed"
            ),
            KeyError::PrivateKey => f.write_str("this is a private key: give roomd the public key only"),
            KeyError::Unsupported => f.write_str(
                "not a PEM public key of a supported kind (ECDSA P-256, Ed25519, RSA of 2048 to 8192 bits)",
            ),
        }
    }
}

impl std::error::Error for KeyError {}

impl Key {
    /// An HS256 key from a shared secret of at least [`MIN_SECRET_BYTES`].
    pub fn secret(kid: Option<String>, secret: &[u8]) -> Result<Key, KeyError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyError::SecretTooShort { len: secret.len() });
        }
        let decoding = DecodingKey::from_secret(secret)
            .map_err(|_| KeyError::SecretTooShort { len: secret.len() })?;
        Ok(Key {
            kid,
            alg: Algorithm::HS256,
            decoding,
        })
    }

    /// A key from a PEM public key: ECDSA P-256 (ES256), Ed25519 (EdDSA) or
    /// RSA (RS256). The key is parsed and checked here, so that a bad one
    /// fails at start rather than at every token.
    pub fn public_pem(kid: Option<String>, pem: &[u8]) -> Result<Key, KeyError> {
        if pem
            .windows(b"PRIVATE KEY".len())
            .any(|w| w == b"PRIVATE KEY")
        {
            return Err(KeyError::PrivateKey);
        }
        for (parse, alg, check) in PEM_KINDS {
            let Ok(decoding) = parse(pem) else {
                continue;
            };
            let usable = decoding
                .try_get_as_bytes()
                .is_ok_and(|der| ParsedPublicKey::new(check, der).is_ok());
            if usable {
                return Ok(Key { kid, alg, decoding });
            }
        }
        Err(KeyError::Unsupported)
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The name a token's `kid` picks this key by.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/auth/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn each_public_key_gets_its_algorithm() {
        for (file, alg) in [
            ("es256.pub.pem", Algorithm::ES256),
            ("ed25519.pub.pem", Algorithm::EdDSA),
            ("rs256.pub.pem", Algorithm::RS256),
        ] {
            let key = Key::public_pem(Some("k".into()), &data(file)).unwrap();
            assert_eq!(key.algorithm(), alg, "{file}");
            assert_eq!(key.kid(), Some("k"));
        }
    }

    #[test]
    fn refuses_private_other_curve_and_garbage() {
        assert_eq!(
            Key::public_pem(None, &data("es256.key.pem")).unwrap_err(),
            KeyError::PrivateKey
        );
        assert_eq!(
            Key::public_pem(None, &data("rs256.key.pem")).unwrap_err(),
            KeyError::PrivateKey
        );
        assert_eq!(
            Key::public_pem(None, &data("p384.pub.pem")).unwrap_err(),
            KeyError::Unsupported
        );
        assert_eq!(
            Key::public_pem(None, b"").unwrap_err(),
            KeyError::Unsupported
        );
        let mut broken = data("rs256.pub.pem");
        broken[60] ^= 0x01;
        assert!(Key::public_pem(None, &broken).is_err());
    }

    #[test]
    fn secrets_need_32_bytes_and_errors_show_no_key() {
        let short = [b'k'; 31];
        let err = Key::secret(None, &short).unwrap_err();
        assert_eq!(err, KeyError::SecretTooShort { len: 31 });
        assert!(!err.to_string().contains("kkk"));
        let key = Key::secret(None, &data("hs256.secret")).unwrap();
        assert_eq!(key.algorithm(), Algorithm::HS256);
        let shown = format!("{key:?}");
        assert!(
            shown.contains("redacted") && !shown.contains("SecretOrDer(["),
            "{shown}"
        );
    }
}
