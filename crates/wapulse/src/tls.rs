//! Outgoing TLS (rustls, ring): one way to build the client configuration
//! that notification receivers, `http` probes (`https://`) and `postgres`
//! probes (`sslmode=require`) use.
//!
//! Trusted roots: Mozilla's (webpki-roots, compiled in, so a bare
//! container works), the system's store (where operators install a
//! company CA), and any `ca_file` given (PEM, one or more certificates).
//! Certificates are always verified, names included: there is no switch to
//! turn verification off.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Extra trusted certificates, read from a `ca_file`.
pub type ExtraRoots = Vec<CertificateDer<'static>>;

/// The certificates of a PEM file, or an error naming the file.
pub fn read_ca_file(path: &Path) -> Result<ExtraRoots> {
    const LIMIT: u64 = 4 << 20;
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    if !meta.is_file() || meta.len() > LIMIT {
        bail!(
            "`{}` is not a certificate file (a regular file of at most 4 MiB)",
            path.display()
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<ExtraRoots, _>>()
        .map_err(|e| anyhow::anyhow!("`{}` is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        bail!(
            "`{}` holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    // Each must be usable as a trust anchor.
    let mut store = rustls::RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        store.add(cert.clone()).map_err(|e| {
            anyhow::anyhow!(
                "`{}`: certificate {} is not a usable CA certificate: {e}",
                path.display(),
                i + 1
            )
        })?;
    }
    Ok(certs)
}

/// The system store's certificates, read once.
pub fn system_certs() -> &'static [CertificateDer<'static>] {
    static CERTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    CERTS.get_or_init(|| {
        let native = rustls_native_certs::load_native_certs();
        if !native.errors.is_empty() {
            tracing::debug!(errors = native.errors.len(), "system CA certificates");
        }
        native.certs
    })
}

/// Mozilla's roots and the system's, read once.
fn base_roots() -> &'static rustls::RootCertStore {
    static ROOTS: OnceLock<rustls::RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut store = rustls::RootCertStore::empty();
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let (added, ignored) = store.add_parsable_certificates(system_certs().iter().cloned());
        tracing::debug!(added, ignored, "system CA certificates");
        store
    })
}

/// A client configuration trusting the base roots and `extra`.
pub fn client_config(extra: &[CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut roots = base_roots().clone();
    // Checked when read (`read_ca_file`).
    let _ = roots.add_parsable_certificates(extra.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

/// `builder` finished with `roots` as its TLS configuration.
pub fn http_client(
    roots: &Arc<rustls::ClientConfig>,
    builder: reqwest::ClientBuilder,
) -> reqwest::Client {
    builder
        .use_preconfigured_tls((**roots).clone())
        .build()
        .expect("a rustls client configuration is accepted by reqwest")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_usable_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = format!("{:#}", read_ca_file(&missing).unwrap_err());
        assert!(
            err.contains("cannot read") && err.contains("missing.pem"),
            "{err}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = format!("{:#}", read_ca_file(&empty).unwrap_err());
        assert!(err.contains("holds no certificate"), "{err}");
        let err = format!("{:#}", read_ca_file(Path::new("/dev/zero")).unwrap_err());
        assert!(err.contains("not a certificate file"), "{err}");
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, ca.pem()).unwrap();
        assert_eq!(read_ca_file(&good).unwrap().len(), 1);
        // The base roots are there whatever the machine has.
        assert!(client_config(&[]).alpn_protocols.is_empty());
        assert!(base_roots().len() >= webpki_roots::TLS_SERVER_ROOTS.len());
    }
}
