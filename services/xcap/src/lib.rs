//! Herald's XCAP server (RFC 4825): users read and change their XML
//! documents (presence rules, buddy lists, RLS services, hard presence
//! state) over HTTP, whole or by node selector.
//!
//! Owns: the HTTP surface ([`app`], [`run`]), the node selector
//! ([`selector`]), the splice-and-reparse changes of documents, and the
//! application usages with their validation ([`usage`]). Documents are
//! kept through [`store::Store`] with compare-and-set of the entity tag.
//!
//! Does not own: who the requester is ([`XcapAuth`], provided by the
//! binary; HTTP Digest lives in the auth crate) and what a change means
//! to presence ([`XcapObserver`] is told after each one).
//!
//! Must never: store a document its usage rejects, let a user reach
//! another user's documents, or answer a write to a global document with
//! anything but a refusal.

mod document;
mod error;
pub mod selector;
mod server;
pub mod usage;

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use sip::Aor;
use store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use api::DocumentChange;
pub use error::{Conflict, Exists, XcapError};
pub use server::app;

/// MIME type of an element (RFC 4825 §15.2.1).
pub const ELEMENT_MIME: &str = "application/xcap-el+xml";
/// MIME type of an attribute value (§15.2.2).
pub const ATTRIBUTE_MIME: &str = "application/xcap-att+xml";
/// MIME type of namespace bindings (§15.2.3).
pub const NAMESPACE_MIME: &str = "application/xcap-ns+xml";
/// MIME type of the §11 error documents.
pub const ERROR_MIME: &str = error::ERROR_MIME;

/// Default largest document, in bytes.
pub const DEFAULT_MAX_DOCUMENT_SIZE: usize = 1024 * 1024;

/// Settings of the XCAP role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XcapConfig {
    /// Path of the XCAP root (RFC 4825 §6.1), e.g. `/xcap-root`.
    pub root: String,
    /// Largest request body and largest stored document (413 past it).
    pub max_document_size: usize,
}

impl Default for XcapConfig {
    fn default() -> Self {
        XcapConfig {
            root: "/xcap-root".into(),
            max_document_size: DEFAULT_MAX_DOCUMENT_SIZE,
        }
    }
}

/// What an authenticator sees of a request.
#[derive(Debug)]
pub struct AuthRequest<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    /// The TCP peer, when served from a socket (absent under `oneshot`).
    pub peer: Option<SocketAddr>,
}

/// A refused request: its status (401, 403, ...) and headers (e.g. a
/// `WWW-Authenticate` challenge), sent as is.
#[derive(Debug, Clone)]
pub struct AuthRejection {
    pub status: StatusCode,
    pub headers: HeaderMap,
}

/// Who sends a request. Implemented by the binary (HTTP Digest with the
/// SIP credentials, RFC 7616) and by tests.
#[async_trait]
pub trait XcapAuth: Send + Sync + 'static {
    /// The authenticated user, as the AOR their XUI must equal.
    async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Aor, AuthRejection>;
}

/// Trusts every request to come from the owner of the XUI it names (and
/// global documents to be read by anyone). Only for a server no one else
/// reaches: the binary warns loudly when it runs with this.
#[derive(Debug, Clone)]
pub struct OpenAuth {
    root: String,
}

impl OpenAuth {
    pub fn new(root: &str) -> OpenAuth {
        OpenAuth {
            root: root.to_string(),
        }
    }
}

#[async_trait]
impl XcapAuth for OpenAuth {
    async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Aor, AuthRejection> {
        let xui = request
            .uri
            .path()
            .strip_prefix(self.root.as_str())
            .and_then(|rest| rest.split('/').skip_while(|s| *s != "users").nth(1))
            .and_then(|xui| percent_encoding::percent_decode_str(xui).decode_utf8().ok())
            .and_then(|xui| xui.parse::<Aor>().ok());
        // Global documents: a placeholder requester that owns nothing.
        Ok(xui.unwrap_or_else(|| {
            "sip:anonymous@anonymous.invalid"
                .parse()
                .expect("a valid AOR")
        }))
    }
}

/// Told after every stored change (the presence service re-evaluates
/// pres-rules, pidf-manipulation and xcap-diff subscriptions).
#[async_trait]
pub trait XcapObserver: Send + Sync + 'static {
    async fn document_changed(&self, change: DocumentChange);
}

/// An observer that ignores changes (an XCAP role with no presence).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

#[async_trait]
impl XcapObserver for NoObserver {
    async fn document_changed(&self, _change: DocumentChange) {}
}

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct XcapState {
    pub config: Arc<XcapConfig>,
    pub store: Arc<dyn Store>,
    pub auth: Arc<dyn XcapAuth>,
    pub observer: Arc<dyn XcapObserver>,
    /// Writers to one document in this process take turns (striped by
    /// the document's key), so they do not exhaust each other's
    /// compare-and-set retries; the store's check still guards against
    /// other processes.
    write_locks: Arc<[tokio::sync::Mutex<()>]>,
}

/// Stripes of [`XcapState`]'s write locks.
const WRITE_LOCK_STRIPES: usize = 256;

impl XcapState {
    pub fn new(
        config: XcapConfig,
        store: Arc<dyn Store>,
        auth: Arc<dyn XcapAuth>,
        observer: Arc<dyn XcapObserver>,
    ) -> XcapState {
        XcapState {
            config: Arc::new(config),
            store,
            auth,
            observer,
            write_locks: (0..WRITE_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The lock a writer of document `key` holds while it reads, changes
    /// and writes it.
    pub(crate) fn write_lock(&self, key: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        &self.write_locks[(hash % WRITE_LOCK_STRIPES as u64) as usize]
    }
}

/// Serves XCAP on `listener` until `shutdown` is cancelled, then finishes
/// the requests in flight.
pub async fn run(
    config: XcapConfig,
    listener: TcpListener,
    store: Arc<dyn Store>,
    auth: Arc<dyn XcapAuth>,
    observer: Arc<dyn XcapObserver>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = app(XcapState::new(config, store, auth, observer));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
