//! SIP over TLS (RFC 3261 §26.2; framed like TCP) and over secure
//! WebSocket (RFC 7118 §5), and the certificate both present.
//!
//! The certificate and key come from PEM files and are re-read when the
//! files change: each new handshake asks [`TlsCertificates`] for the key
//! in force, so a renewed certificate needs no restart and connections
//! already open keep the session they negotiated. A file that does not
//! load (half written, key and certificate not matching) leaves the
//! previous certificate in force and is logged.
//!
//! Connection reuse (RFC 5923 aliases) is not done: it only matters for
//! requests a server opens new connections for, and Herald never opens
//! one. Every request to a client goes back over the connection the
//! client opened (its flow, RFC 5626), which is the reuse RFC 5923 is
//! after, without having to trust an alias the peer's certificate would
//! have to vouch for.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::flow::Transport;
use crate::Edge;

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    // The cause is in the message (not a `source`), so a log line that
    // prints only this error still says it.
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("bad PEM in {path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("unusable private key in {path}: {error}")]
    Key { path: PathBuf, error: rustls::Error },
    #[error("the key in {key} does not belong to the certificate in {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
}

/// The certificate chain and key TLS and WSS listeners present, reloaded
/// from their files when they change.
pub struct TlsCertificates {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// Both files' bytes when last read (unreadable: empty).
    seen: Mutex<Stamp>,
}

/// What the files held. Their bytes, not their modification times: two
/// writes within one clock tick of the file system share a time, and a
/// renewed certificate often has the same length as the old one.
type Stamp = [Vec<u8>; 2];

impl fmt::Debug for TlsCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCertificates")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// The process's crypto provider (the binary installs one at start), or
/// ring, the one this crate is built with.
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.to_path_buf(),
        error,
    })
}

/// Checks a certificate chain and its key read from these files.
fn load_key(
    cert_path: &Path,
    cert_pem: &[u8],
    key_path: &Path,
    key_pem: &[u8],
) -> Result<CertifiedKey, TlsError> {
    let pem_error = |path: &Path, e: rustls::pki_types::pem::Error| TlsError::Pem {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert_path, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: key_path.to_path_buf(),
        },
        e => pem_error(key_path, e),
    })?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|error| TlsError::Key {
            path: key_path.to_path_buf(),
            error,
        })?;
    let certified = CertifiedKey::new(chain, signing);
    // A key from one renewal and a certificate from another would make
    // every handshake fail; refuse the pair instead.
    certified.keys_match().map_err(|_| TlsError::Mismatch {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
    })?;
    Ok(certified)
}

impl TlsCertificates {
    /// Loads the certificate chain and key (PEM). Fails if either is
    /// missing, malformed, or they do not belong together.
    pub fn load(
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Result<Arc<TlsCertificates>, TlsError> {
        let (cert_path, key_path) = (cert.into(), key.into());
        let seen = [read(&cert_path)?, read(&key_path)?];
        let current = load_key(&cert_path, &seen[0], &key_path, &seen[1])?;
        Ok(Arc::new(TlsCertificates {
            cert_path,
            key_path,
            current: RwLock::new(Arc::new(current)),
            seen: Mutex::new(seen),
        }))
    }

    /// Re-reads the files if either changed since last read. `Ok(true)`
    /// when a new certificate is in force; on an error the old one stays.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        // An unreadable file (mid-rename, say) counts as empty: a change,
        // reported, and retried when it is readable again.
        let (cert, key) = (read(&self.cert_path), read(&self.key_path));
        let now: Stamp = [
            cert.as_ref().map(Vec::clone).unwrap_or_default(),
            key.as_ref().map(Vec::clone).unwrap_or_default(),
        ];
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return Ok(false);
            }
            // Remembered even if loading fails: a bad file is reported
            // once, and tried again when it changes again.
            *seen = now;
        }
        let key = load_key(&self.cert_path, &cert?, &self.key_path, &key?)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        Ok(true)
    }

    /// The certificate chain in force (DER), leaf first.
    pub fn chain(&self) -> Vec<Vec<u8>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .cert
            .iter()
            .map(|c| c.as_ref().to_vec())
            .collect()
    }

    /// A server configuration whose handshakes present the certificate in
    /// force at the time of each handshake.
    pub(crate) fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for TlsCertificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

/// Checks the certificate files every `interval` until `shutdown`.
pub(crate) async fn watch(
    certificates: Arc<TlsCertificates>,
    interval: std::time::Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let certs = Arc::clone(&certificates);
        // File reads and key parsing block; keep them off the runtime.
        match tokio::task::spawn_blocking(move || certs.reload_if_changed()).await {
            Ok(Ok(true)) => tracing::info!(
                cert = %certificates.cert_path.display(),
                "TLS certificate reloaded; new handshakes use it"
            ),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!(
                error = %e,
                "TLS certificate files changed but cannot be used; keeping the previous certificate"
            ),
            Err(e) => tracing::warn!(error = %e, "TLS certificate reload task failed"),
        }
    }
}

/// SIP over TLS on `listener`.
pub(crate) async fn serve_tls(
    edge: Arc<Edge>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: CancellationToken,
) {
    super::accept_loop(edge, listener, shutdown, "tls", move |e, s, r, c| {
        connection(e, acceptor.clone(), s, r, c, Transport::Tls)
    })
    .await;
}

/// SIP over secure WebSocket on `listener`.
pub(crate) async fn serve_wss(
    edge: Arc<Edge>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: CancellationToken,
) {
    super::accept_loop(edge, listener, shutdown, "wss", move |e, s, r, c| {
        connection(e, acceptor.clone(), s, r, c, Transport::Wss)
    })
    .await;
}

async fn connection(
    edge: Arc<Edge>,
    acceptor: TlsAcceptor,
    stream: TcpStream,
    remote: std::net::SocketAddr,
    shutdown: CancellationToken,
    transport: Transport,
) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    // A peer that connects and never finishes the handshake (or speaks
    // plain SIP to this port, which rustls refuses at its first record)
    // must not hold the task: the handshake has a deadline.
    let handshake =
        tokio::time::timeout(edge.config.tls_handshake_timeout, acceptor.accept(stream));
    let stream = tokio::select! {
        r = handshake => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, transport = transport.via_name(), "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, transport = transport.via_name(), "TLS handshake timed out");
                return;
            }
        },
        _ = shutdown.cancelled() => return,
    };
    match transport {
        Transport::Wss => {
            super::ws::serve_socket(edge, stream, transport, local, remote, shutdown).await
        }
        _ => super::tcp::serve_stream(edge, stream, transport, local, remote, shutdown).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key, as PEM.
    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn loads_a_pair_and_refuses_what_does_not_belong_together() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let (c1, k1) = pair("one.test");
        let (_, k2) = pair("two.test");
        std::fs::write(&cert, &c1).unwrap();
        std::fs::write(&key, &k2).unwrap();
        assert!(matches!(
            TlsCertificates::load(&cert, &key),
            Err(TlsError::Mismatch { .. })
        ));
        std::fs::write(&key, "no key here").unwrap();
        assert!(matches!(
            TlsCertificates::load(&cert, &key),
            Err(TlsError::NoKey { .. })
        ));
        assert!(matches!(
            TlsCertificates::load(dir.path().join("missing.pem"), &key),
            Err(TlsError::Read { .. })
        ));
        std::fs::write(&key, &k1).unwrap();
        assert!(TlsCertificates::load(&cert, &key).is_ok());
    }

    #[test]
    fn reload_takes_a_good_change_and_keeps_the_old_key_on_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let (c1, k1) = pair("one.test");
        std::fs::write(&cert, &c1).unwrap();
        std::fs::write(&key, &k1).unwrap();
        let certs = TlsCertificates::load(&cert, &key).unwrap();
        let first = certs.chain();
        assert!(!certs.reload_if_changed().unwrap(), "nothing changed");

        let (c2, k2) = pair("two.test");
        std::fs::write(&key, &k2).unwrap();
        std::fs::write(&cert, &c2).unwrap();
        assert!(certs.reload_if_changed().unwrap());
        let second = certs.chain();
        assert_ne!(first, second);

        // Only the certificate is replaced: it does not match the key.
        let (c3, _) = pair("three.test");
        std::fs::write(&cert, &c3).unwrap();
        assert!(certs.reload_if_changed().is_err());
        assert_eq!(certs.chain(), second, "the last good pair stays");
        // Reported once; the same files are not re-read at every check.
        assert!(!certs.reload_if_changed().unwrap());
    }
}
