//! Presence: what the edge asks of the presence role (RFC 3903 PUBLISH,
//! RFC 6665/3856 SUBSCRIBE, RFC 3857 watcher info).

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use sip::Aor;
use thiserror::Error;

use store::{FlowToken, StoreError};

use crate::DocumentChange;

/// An entity tag (RFC 3903 §4.1): names one publication of a presentity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ETag(pub String);

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A PUBLISH, read by the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The Request-URI's AOR.
    pub presentity: Aor,
    /// The Event package (`presence`), lower case.
    pub event: String,
    /// SIP-If-Match, for refresh, modify and remove.
    pub if_match: Option<ETag>,
    pub expires: Option<u32>,
    /// Media type without parameters, lower case.
    pub content_type: Option<String>,
    pub body: Bytes,
    /// The flow it came over, and whether that flow is a connection
    /// (publications over a closed connection may end with it).
    pub flow: FlowToken,
    pub connection: bool,
    /// The identity the edge authenticated (digest), `None` when the edge
    /// runs without authentication. Set by the edge only, never from a
    /// header a client wrote.
    pub authenticated: Option<Aor>,
}

/// A PUBLISH that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOk {
    /// The new entity tag; `None` when the publication was removed.
    pub etag: Option<ETag>,
    /// Granted lifetime, seconds (0 on removal).
    pub expires: u32,
}

/// The dialog a SUBSCRIBE creates or refreshes (RFC 6665 §4.1.2), seen
/// from Herald as the notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeDialog {
    pub call_id: String,
    /// The subscriber's From tag.
    pub remote_tag: String,
    /// Our To tag; `None` on an initial SUBSCRIBE (the service makes one).
    pub local_tag: Option<String>,
    /// From header value (the subscriber), as received.
    pub remote_uri: String,
    /// To header value without a tag, as received.
    pub local_uri: String,
    /// Contact URI of the subscriber: where NOTIFYs go.
    pub remote_target: String,
    /// Record-Route values in order: the route set for NOTIFYs (§12.1.1).
    pub route_set: Vec<String>,
    pub remote_cseq: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// The Request-URI's AOR.
    pub presentity: Aor,
    /// The From header's AOR.
    pub watcher: Aor,
    /// The Event package (`presence`, `presence.winfo`), lower case.
    pub event: String,
    /// The Event `id` parameter, echoed in NOTIFYs.
    pub event_id: Option<String>,
    /// Accept media types, lower case; empty when absent.
    pub accept: Vec<String>,
    pub expires: Option<u32>,
    pub dialog: SubscribeDialog,
    pub flow: FlowToken,
    pub connection: bool,
    /// Media type of the body without parameters, lower case (xcap-diff
    /// takes a resource-lists body naming the documents, RFC 5875 §4.1).
    pub content_type: Option<String>,
    pub body: Bytes,
    /// The identity the edge authenticated (digest), `None` when the edge
    /// runs without authentication. Set by the edge only, never from a
    /// header a client wrote.
    pub authenticated: Option<Aor>,
}

/// A SUBSCRIBE that succeeded; the first NOTIFY follows at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOk {
    /// Our To tag for the dialog.
    pub local_tag: String,
    /// Granted expiry, seconds.
    pub expires: u32,
}

/// Why a presence request failed. Each maps to one status in
/// [`PresenceError::status`]; the edge adds the headers the status needs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PresenceError {
    /// Event package not served (489, with Allow-Events).
    #[error("event package {0} not served")]
    BadEvent(String),
    /// Expiry below the minimum (423, with Min-Expires).
    #[error("interval too brief, minimum {min_expires}")]
    IntervalTooBrief { min_expires: u32 },
    /// SIP-If-Match names no live publication (412, RFC 3903 §6).
    #[error("no publication with that entity tag")]
    UnknownETag,
    /// Body type not accepted (415, with Accept).
    #[error("unsupported media type {got}")]
    UnsupportedMediaType { got: String, accept: String },
    /// Accept lists nothing we can send (406).
    #[error("no acceptable media type")]
    NotAcceptable,
    /// The body or a header is invalid (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A document over the size limit (413).
    #[error("body too large")]
    TooLarge,
    /// Not allowed (403): winfo of someone else, or a limit per user.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// In-dialog request for a subscription that does not exist (481).
    #[error("no such subscription")]
    NoSuchSubscription,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PresenceError {
    pub fn status(&self) -> u16 {
        match self {
            PresenceError::BadEvent(_) => 489,
            PresenceError::IntervalTooBrief { .. } => 423,
            PresenceError::UnknownETag => 412,
            PresenceError::UnsupportedMediaType { .. } => 415,
            PresenceError::NotAcceptable => 406,
            PresenceError::BadRequest(_) => 400,
            PresenceError::TooLarge => 413,
            PresenceError::Forbidden(_) => 403,
            PresenceError::NoSuchSubscription => 481,
            PresenceError::Store(_) => 503,
        }
    }
}

/// Event packages the presence role serves.
pub const PRESENCE_EVENTS: &[&str] = &["presence", "presence.winfo", "xcap-diff"];

#[async_trait]
pub trait Presence: Send + Sync + 'static {
    async fn publish(&self, request: PublishRequest) -> Result<PublishOk, PresenceError>;

    /// Creates, refreshes or ends a subscription. After `Ok` the service
    /// sends the first NOTIFY on its own (RFC 6665 §4.2.1.2).
    async fn subscribe(&self, request: SubscribeRequest) -> Result<SubscribeOk, PresenceError>;

    /// A connection closed: subscriptions whose NOTIFYs travel over it end
    /// now, and publications made over it may expire.
    async fn flow_closed(&self, flow: FlowToken);

    /// One of `change.user`'s XCAP documents changed (called by the XCAP
    /// role on the presence shard that owns the user): pres-rules are
    /// re-evaluated for every watcher, pidf-manipulation state recomposed,
    /// and xcap-diff subscribers told (RFC 5875).
    async fn documents_changed(&self, change: DocumentChange) -> Result<(), PresenceError>;
}
