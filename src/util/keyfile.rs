//! Reading the key and certificate files the configuration names (a
//! webhook's HMAC key, a syslog collector's CA and client certificate): here,
//! below the configuration, so that checking a config and using it read
//! them the same way.

use std::path::Path;

/// Reads a secret key file: its content without the final newline, not
/// empty, at most 4 KiB.
pub fn read_secret(p: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", p.display()));
    }
    if meta.len() > 4096 {
        return Err(format!("{} is larger than 4 KiB: not a secret key", p.display()));
    }
    let mut key = std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    while key.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        key.pop();
    }
    if key.is_empty() {
        return Err(format!("{} is empty", p.display()));
    }
    Ok(key)
}

/// The certificates of a PEM file (at least one).
pub fn read_certs(p: &std::path::Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(p)
        .map_err(|e| format!("cannot read {}: {e}", p.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", p.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", p.display()));
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn read_key(p: &std::path::Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>, String> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_file(p)
        .map_err(|e| format!("{}: no usable PEM private key: {e}", p.display()))
}
