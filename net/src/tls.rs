//! TLS for molstream's QUIC connections: the relay's self-signed identity (created with rcgen
//! on first start and kept in the config directory), its SHA-256 fingerprint, and the pinning
//! certificate verifier clients and plugin hosts use instead of a certificate authority.
//!
//! One crypto provider, ring, for rustls, quinn and the fingerprint.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use thiserror::Error;

use crate::ALPN;

/// Certificate file in the config directory (PEM).
pub const CERT_FILE: &str = "relay-cert.pem";
/// Private key file in the config directory (PEM, PKCS#8, mode 0600).
pub const KEY_FILE: &str = "relay-key.pem";
/// Name the relay's certificate is issued for; clients connect with this server name.
pub const SERVER_NAME: &str = "molstream-relay";

/// TLS and certificate errors.
#[derive(Debug, Error)]
pub enum TlsError {
    /// Reading or writing the config directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A stored certificate or key does not parse.
    #[error("{path}: not a PEM certificate or private key ({detail})")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// Generating the certificate failed.
    #[error("cannot generate the relay certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// quinn refused the TLS configuration (no TLS 1.3 initial cipher suite).
    #[error("QUIC TLS configuration: {0}")]
    Quic(String),
    /// A fingerprint that is not 64 hex digits.
    #[error("certificate fingerprint must be 64 hex digits (SHA-256), got {0:?}")]
    BadFingerprint(String),
    /// `--insecure-local` used for an address that is not loopback.
    #[error("--insecure-local only connects to loopback addresses, not {0}")]
    InsecureNotLoopback(SocketAddr),
}

/// The relay's certificate and private key.
#[derive(Debug)]
pub struct RelayIdentity {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl Clone for RelayIdentity {
    fn clone(&self) -> Self {
        Self { cert: self.cert.clone(), key: self.key.clone_key() }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io { path: path.to_owned(), source }
}

impl RelayIdentity {
    /// A new self-signed certificate for [`SERVER_NAME`], `localhost` and the loopback
    /// addresses, kept in memory only.
    ///
    /// # Errors
    /// [`TlsError::Generate`] if key generation fails.
    pub fn generate() -> Result<(Self, String, String), TlsError> {
        let names = vec![SERVER_NAME.to_owned(), "localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        let ck = rcgen::generate_simple_self_signed(names)?;
        let cert_pem = ck.cert.pem();
        let key_pem = ck.signing_key.serialize_pem();
        let key = PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
        Ok((Self { cert: ck.cert.der().clone(), key }, cert_pem, key_pem))
    }

    /// Loads the identity stored in `dir`, `None` if there is none.
    ///
    /// # Errors
    /// Unparsable files.
    pub fn load(dir: &Path) -> Result<Option<Self>, TlsError> {
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        if !(cert_path.exists() && key_path.exists()) {
            return Ok(None);
        }
        let cert = CertificateDer::from_pem_file(&cert_path)
            .map_err(|e| TlsError::Pem { path: cert_path.clone(), detail: e.to_string() })?;
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .map_err(|e| TlsError::Pem { path: key_path.clone(), detail: e.to_string() })?;
        Ok(Some(Self { cert, key }))
    }

    /// Loads the identity from `dir`, or creates it there on first start (the key file gets
    /// mode 0600). Returns the identity and whether it was created.
    ///
    /// # Errors
    /// I/O errors, unparsable files, or generation failure.
    pub fn load_or_create(dir: &Path) -> Result<(Self, bool), TlsError> {
        if let Some(identity) = Self::load(dir)? {
            return Ok((identity, false));
        }
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let (identity, cert_pem, key_pem) = Self::generate()?;
        write_private(&key_path, key_pem.as_bytes())?;
        std::fs::write(&cert_path, cert_pem).map_err(io_err(&cert_path))?;
        Ok((identity, true))
    }

    /// SHA-256 of the DER certificate: what clients pin.
    #[must_use]
    pub fn fingerprint(&self) -> [u8; 32] {
        fingerprint_of(&self.cert)
    }

    /// The fingerprint as 64 lower-case hex digits.
    #[must_use]
    pub fn fingerprint_hex(&self) -> String {
        hex(&self.fingerprint())
    }
}

/// Writes a file readable by its owner only.
///
/// # Errors
/// [`TlsError::Io`].
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))
}

/// SHA-256 of a DER certificate.
#[must_use]
pub fn fingerprint_of(cert: &CertificateDer<'_>) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Parses a SHA-256 fingerprint: 64 hex digits, optionally separated by `:` or spaces (as
/// `openssl x509 -fingerprint` prints them).
///
/// # Errors
/// [`TlsError::BadFingerprint`].
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], TlsError> {
    let digits: Vec<u8> = s.bytes().filter(|b| *b != b':' && !b.is_ascii_whitespace()).collect();
    let bad = || TlsError::BadFingerprint(s.to_owned());
    if digits.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let hexval = |c: u8| (c as char).to_digit(16).ok_or_else(bad);
        out[i] = u8::try_from(hexval(pair[0])? * 16 + hexval(pair[1])?).map_err(|_| bad())?;
    }
    Ok(out)
}

/// How a client or plugin host trusts the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Accept only a relay whose certificate has this SHA-256.
    Pinned([u8; 32]),
    /// Accept any certificate, for loopback addresses only (development).
    InsecureLocal,
}

impl Trust {
    /// Checks that this trust may be used for `addr` (`InsecureLocal` only on loopback).
    ///
    /// # Errors
    /// [`TlsError::InsecureNotLoopback`].
    pub fn check_addr(&self, addr: SocketAddr) -> Result<(), TlsError> {
        match self {
            Self::InsecureLocal if !addr.ip().is_loopback() => Err(TlsError::InsecureNotLoopback(addr)),
            _ => Ok(()),
        }
    }
}

/// Keepalive and idle timeout of every molstream QUIC connection.
#[derive(Debug, Clone, Copy)]
pub struct TransportSettings {
    /// A keepalive is sent after this long without traffic.
    pub keep_alive: Duration,
    /// The connection is dropped after this long without hearing from the peer.
    pub idle_timeout: Duration,
}

impl Default for TransportSettings {
    fn default() -> Self {
        Self { keep_alive: Duration::from_secs(5), idle_timeout: Duration::from_secs(30) }
    }
}

impl TransportSettings {
    fn config(&self) -> Arc<quinn::TransportConfig> {
        let mut t = quinn::TransportConfig::default();
        t.keep_alive_interval(Some(self.keep_alive));
        // An idle timeout above quinn's varint range falls back to 30 s rather than none.
        let idle = quinn::IdleTimeout::try_from(self.idle_timeout)
            .unwrap_or_else(|_| quinn::IdleTimeout::from(quinn::VarInt::from_u32(30_000)));
        t.max_idle_timeout(Some(idle));
        // Many concurrent frame streams per connection (one per channel, each instance).
        t.max_concurrent_uni_streams(quinn::VarInt::from_u32(1024));
        Arc::new(t)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The relay's QUIC server configuration: TLS 1.3 only, ALPN `molstream/1`, keepalive and
/// idle timeout from `transport`.
///
/// # Errors
/// [`TlsError::Rustls`] or [`TlsError::Quic`] if the configuration is refused.
pub fn server_config(identity: &RelayIdentity, transport: &TransportSettings) -> Result<quinn::ServerConfig, TlsError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    cfg.transport_config(transport.config());
    Ok(cfg)
}

/// A client (or plugin host) QUIC configuration trusting the relay as `trust` says.
///
/// # Errors
/// [`TlsError::Rustls`] or [`TlsError::Quic`] if the configuration is refused.
pub fn client_config(trust: Trust, transport: &TransportSettings) -> Result<quinn::ClientConfig, TlsError> {
    let provider = provider();
    let verifier = PinnedVerifier {
        pin: match trust {
            Trust::Pinned(fp) => Some(fp),
            Trust::InsecureLocal => None,
        },
        provider: provider.clone(),
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(quic));
    cfg.transport_config(transport.config());
    Ok(cfg)
}

/// Accepts the relay's end-entity certificate when its SHA-256 equals the pin (or any
/// certificate when there is no pin: `--insecure-local`), and still verifies the TLS 1.3
/// handshake signature with the certificate's key, so the peer must hold the private key.
#[derive(Debug)]
pub struct PinnedVerifier {
    pin: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

impl PinnedVerifier {
    /// A verifier for `pin` (`None`: accept any certificate).
    #[must_use]
    pub fn new(pin: Option<[u8; 32]>) -> Self {
        Self { pin, provider: provider() }
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pin {
            None => Ok(ServerCertVerified::assertion()),
            Some(pin) => {
                let got = fingerprint_of(end_entity);
                // Constant-time compare (the fingerprint is public, but this costs nothing).
                if got.iter().zip(pin.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0 {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::General(format!(
                        "relay certificate fingerprint {} does not match the pinned {}",
                        hex(&got),
                        hex(&pin)
                    )))
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // QUIC is TLS 1.3 only; the configuration offers no TLS 1.2.
        Err(rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The default config directory: `$XDG_CONFIG_HOME/molstream`, else `~/.config/molstream`,
/// else `./molstream-config`.
#[must_use]
pub fn default_config_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("molstream");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".config").join("molstream");
    }
    PathBuf::from("molstream-config")
}

/// Resolves a plugin key given as a literal or as the path of a file holding it (trimmed).
///
/// # Errors
/// [`TlsError::Io`] if `value` names a file that cannot be read.
pub fn resolve_key(value: &str) -> Result<String, TlsError> {
    let path = Path::new(value);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        Ok(text.trim().to_owned())
    } else {
        Ok(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_both_spellings() {
        let fp: Vec<u8> = (0..32).collect();
        let plain = hex(&fp);
        assert_eq!(plain.len(), 64);
        assert_eq!(parse_fingerprint(&plain).unwrap().to_vec(), fp);
        let colons = fp.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
        assert_eq!(parse_fingerprint(&colons).unwrap().to_vec(), fp);
        assert!(parse_fingerprint(&plain[..62]).is_err());
        assert!(parse_fingerprint(&format!("{}zz", &plain[..62])).is_err());
        assert!(parse_fingerprint("é").is_err());
    }

    #[test]
    fn identity_is_created_once_and_reloaded() {
        let dir = std::env::temp_dir().join(format!("molstream-tls-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (a, created) = RelayIdentity::load_or_create(&dir).unwrap();
        assert!(created);
        let (b, created) = RelayIdentity::load_or_create(&dir).unwrap();
        assert!(!created);
        assert_eq!(a.fingerprint(), b.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.join(CERT_FILE), "garbage").unwrap();
        assert!(matches!(RelayIdentity::load_or_create(&dir), Err(TlsError::Pem { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn insecure_trust_is_loopback_only() {
        assert!(Trust::InsecureLocal.check_addr("127.0.0.1:4433".parse().unwrap()).is_ok());
        assert!(Trust::InsecureLocal.check_addr("[::1]:4433".parse().unwrap()).is_ok());
        assert!(matches!(
            Trust::InsecureLocal.check_addr("192.0.2.7:4433".parse().unwrap()),
            Err(TlsError::InsecureNotLoopback(_))
        ));
        assert!(Trust::Pinned([0; 32]).check_addr("192.0.2.7:4433".parse().unwrap()).is_ok());
    }
}
