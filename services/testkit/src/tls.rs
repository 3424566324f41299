//! Test certificates: a CA made at test time (rcgen), server certificates
//! it signs written as PEM files for `--tls-cert` / `--tls-key`, and the
//! client side that trusts only that CA.
//!
//! Nothing here is a secret: every key lives in a temporary directory for
//! the length of one test.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType,
    SerialNumber,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A byte stream a user agent talks over (TCP or TLS over TCP).
pub trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// A test CA and the server certificate files it issued, in a temporary
/// directory removed on drop.
pub struct TestTls {
    dir: tempfile::TempDir,
    ca_key: KeyPair,
    ca: rcgen::Certificate,
    client: Arc<ClientConfig>,
    /// DER of the server certificate now in the files.
    server_der: Vec<u8>,
}

impl TestTls {
    /// A new CA, and a server certificate for 127.0.0.1 and localhost
    /// (serial 1, common name `herald test 1`) in `server.pem` and
    /// `server.key`.
    pub fn new() -> Result<TestTls> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let ca_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Herald test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&ca_key)?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone())?;
        let client =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let mut tls = TestTls {
            dir,
            ca_key,
            ca,
            client: Arc::new(client),
            server_der: Vec::new(),
        };
        tls.issue_server(1)?;
        Ok(tls)
    }

    /// Issues a new server certificate (fresh key, `serial`, common name
    /// `herald test <serial>`) and writes it over the certificate and key
    /// files, key first then certificate, each by an atomic rename so the
    /// server never reads half a file. Returns its DER.
    pub fn issue_server(&mut self, serial: u64) -> Result<Vec<u8>> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.serial_number = Some(SerialNumber::from(serial));
        params
            .distinguished_name
            .push(DnType::CommonName, format!("herald test {serial}"));
        let cert = params.signed_by(&key, &self.ca, &self.ca_key)?;
        write_atomically(&self.key_path(), key.serialize_pem().as_bytes())?;
        write_atomically(&self.cert_path(), cert.pem().as_bytes())?;
        self.server_der = cert.der().to_vec();
        Ok(self.server_der.clone())
    }

    /// DER of the server certificate last written.
    pub fn server_der(&self) -> &[u8] {
        &self.server_der
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// A directory for other files of the test (for example a bad cert).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `--tls-cert <file> --tls-key <file>`.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert_path().display().to_string(),
            "--tls-key".into(),
            self.key_path().display().to_string(),
        ]
    }

    /// The client configuration that trusts this CA only.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.client)
    }

    /// A TLS connection to `server` (127.0.0.1), the handshake done and
    /// the server's certificate checked against this CA.
    pub fn connect(&self, server: SocketAddr) -> Result<TlsConnection> {
        connect(&self.client, server)
    }
}

/// A finished TLS client connection.
pub struct TlsConnection {
    pub stream: StreamOwned<ClientConnection, TcpStream>,
    /// The socket under the stream (a second handle), for timeouts and
    /// shutdown.
    pub socket: TcpStream,
    /// DER of the certificate the server presented (the leaf).
    pub peer_certificate: Vec<u8>,
}

fn connect(config: &Arc<ClientConfig>, server: SocketAddr) -> Result<TlsConnection> {
    let mut socket = TcpStream::connect_timeout(&server, Duration::from_secs(5))
        .with_context(|| format!("TCP connect to {server}"))?;
    socket.set_nodelay(true)?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    let name = ServerName::IpAddress(server.ip().into());
    let mut conn = ClientConnection::new(Arc::clone(config), name)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut socket)
            .with_context(|| format!("TLS handshake with {server}"))?;
    }
    let peer_certificate = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c: &CertificateDer<'_>| c.as_ref().to_vec())
        .context("the server presented no certificate")?;
    let handle = socket.try_clone()?;
    Ok(TlsConnection {
        stream: StreamOwned::new(conn, socket),
        socket: handle,
        peer_certificate,
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}
