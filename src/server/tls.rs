//! TLS for `--tls-listen` listeners: the certificate and key loaded into a
//! rustls server configuration (reloaded on SIGHUP), and the record layer
//! of one connection, driven by [`crate::server::connection`] like the
//! plaintext socket beside it. The codec above never knows.

use rustls::ServerConfig;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// The protocol offered in ALPN: HTTP/1.1 only (WebSocket over HTTP/2 is
/// not served).
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// A loaded certificate and key, ready for new connections.
#[derive(Clone, Debug)]
pub(crate) struct TlsIdentity {
    /// The rustls configuration every new TLS connection starts from.
    pub config: Arc<ServerConfig>,
    /// The certificate's `notAfter`, in seconds since the epoch.
    pub not_after_secs: i64,
}

/// Loads the PEM certificate chain at `cert` and the private key at `key`
/// (PKCS#8, SEC1 or PKCS#1). The error names the file and what is wrong,
/// never the key's bytes.
pub(crate) fn load(cert: &Path, key: &Path) -> Result<TlsIdentity, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("cannot read certificates from {}: {e}", cert.display()))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("no certificate in {}", cert.display()));
    };
    let not_after_secs = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| format!("cannot parse the certificate in {}: {e}", cert.display()))?
        .1
        .validity()
        .not_after
        .timestamp();
    let private_key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read a private key from {}: {e}", key.display()))?;
    let provider = Arc::new(aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            format!(
                "the key in {} does not fit the certificate in {}: {e}",
                key.display(),
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(TlsIdentity {
        config: Arc::new(config),
        not_after_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn data(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/tls")
            .join(name)
    }

    #[test]
    fn loads_a_pair_and_reads_its_expiry() {
        let Ok(identity) = load(&data("server.pem"), &data("server.key")) else {
            panic!("the test pair does not load");
        };
        // The test certificates are valid for 100 years from 2026.
        assert!(identity.not_after_secs > 4_000_000_000);
        assert_eq!(identity.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn refuses_a_mismatched_pair_or_missing_files() {
        let Err(e) = load(&data("server.pem"), &data("server2.key")) else {
            panic!("a mismatched pair loaded");
        };
        assert!(e.contains("does not fit"), "{e}");
        assert!(load(&data("nope.pem"), &data("server.key")).is_err());
        assert!(load(&data("server.pem"), &data("server.pem")).is_err());
    }
}
