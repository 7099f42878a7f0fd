//! TLS for the API: a self-signed certificate made at first start (as LND
//! does), kept in `DATADIR/api/tls.cert` with its key in `tls.key` (mode
//! 0600). Clients pin the certificate file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
pub use rustls::ServerConfig;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The certificate or key does not parse, or rustls refused them.
    #[error("TLS certificate {path}: {why} (remove tls.cert and tls.key to make new ones)")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// rustls with ring: no C++/cmake build (aws-lc), on a 2-core CI machine.
/// rustls deprecates ring's provider for lacking post-quantum key
/// exchange; the API is on loopback or a trusted network.
#[allow(deprecated)]
pub(crate) fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The certificate file in `dir`.
pub fn cert_path(dir: &Path) -> PathBuf {
    dir.join("tls.cert")
}

fn key_path(dir: &Path) -> PathBuf {
    dir.join("tls.key")
}

/// Loads the certificate and key in `dir`, making them first if there are
/// none: valid for `localhost`, `127.0.0.1`, `::1` and `names`.
pub fn load_or_create(dir: &Path, names: &[String]) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (cert, key) = (cert_path(dir), key_path(dir));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Io { path, source }
    };
    if !cert.exists() || !key.exists() {
        let mut sans = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        sans.extend(names.iter().cloned());
        let made = rcgen::generate_simple_self_signed(sans).map_err(|e| TlsError::Bad {
            path: cert.clone(),
            why: e.to_string(),
        })?;
        crate::auth::write_private(&key, made.signing_key.serialize_pem().as_bytes())
            .map_err(io(&key))?;
        std::fs::write(&cert, made.cert.pem()).map_err(io(&cert))?;
    }
    let cert_der = read_cert(&cert)?;
    let key_pem = std::fs::read_to_string(&key).map_err(io(&key))?;
    let key_der = pem_body(&key_pem, "PRIVATE KEY").ok_or_else(|| TlsError::Bad {
        path: key.clone(),
        why: "no PKCS#8 private key".into(),
    })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(crate::tls::ring_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth().with_single_cert(
                vec![cert_der],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
            )
        })
        .map_err(|e| TlsError::Bad {
            path: cert.clone(),
            why: e.to_string(),
        })?;
    Ok(Arc::new(config))
}

/// The DER certificate in a PEM file.
pub fn read_cert(path: &Path) -> Result<CertificateDer<'static>, TlsError> {
    let pem = std::fs::read_to_string(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })?;
    pem_body(&pem, "CERTIFICATE")
        .map(CertificateDer::from)
        .ok_or_else(|| TlsError::Bad {
            path: path.to_owned(),
            why: "no PEM certificate".into(),
        })
}

/// The base64 body of the first PEM block labelled `label`, decoded.
fn pem_body(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let b64: String = pem[start..stop].split_whitespace().collect();
    base64_decode(&b64)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_rfc4648_vectors() {
        for (o, i) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_decode(i).unwrap(), o.as_bytes());
        }
        assert_eq!(base64_decode("Zm9v!"), None);
    }

    #[test]
    fn a_certificate_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path(), &["node.example".into()]).unwrap();
        let first = std::fs::read(cert_path(dir.path())).unwrap();
        load_or_create(dir.path(), &[]).unwrap();
        assert_eq!(std::fs::read(cert_path(dir.path())).unwrap(), first);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
