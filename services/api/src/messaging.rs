//! Registrar and page-mode messages: what the edge asks of the messaging
//! role.

use async_trait::async_trait;
use bytes::Bytes;
use sip::Aor;
use thiserror::Error;

use store::{Binding, FlowToken, StoreError};

/// One Contact of a REGISTER, already read by the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactSpec {
    /// The contact URI, verbatim.
    pub uri: String,
    /// Its `expires` parameter, if any.
    pub expires: Option<u32>,
    pub q: Option<u16>,
    pub instance: Option<String>,
    pub reg_id: Option<u32>,
}

/// What a REGISTER asks for (RFC 3261 §10.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterContacts {
    /// No Contact: list the current bindings (§10.2.3).
    Fetch,
    /// `Contact: *` with `Expires: 0` (§10.2.2).
    RemoveAll,
    /// Add, refresh or remove these contacts.
    Update(Vec<ContactSpec>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    /// The To header's AOR.
    pub aor: Aor,
    pub contacts: RegisterContacts,
    /// The Expires header, if any.
    pub expires: Option<u32>,
    pub call_id: String,
    pub cseq: u32,
    /// Where the REGISTER came from; requests to these contacts go back
    /// over it.
    pub flow: FlowToken,
    /// The identity the edge authenticated (digest), `None` when the edge
    /// runs without authentication. Set by the edge only, never from a
    /// header a client wrote.
    pub authenticated: Option<Aor>,
}

/// Why a REGISTER failed. Each maps to one status in [`RegistrarError::status`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistrarError {
    /// RFC 3261 §10.3 step 7: expiry below the minimum (423, Min-Expires).
    #[error("interval too brief, minimum {min_expires}")]
    IntervalTooBrief { min_expires: u32 },
    /// RFC 3261 §10.3 step 7: same Call-ID with a CSeq not higher.
    #[error("out of order CSeq for an existing binding")]
    OutOfOrder,
    /// `*` with a non-zero Expires, or with other contacts (§10.3 step 6).
    #[error("invalid use of Contact: *")]
    InvalidStar,
    /// The AOR is not one this registrar serves (§10.3 step 3).
    #[error("not found")]
    NotFound,
    /// More contacts than the configured limit per AOR.
    #[error("too many contacts")]
    TooManyContacts,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistrarError {
    pub fn status(&self) -> u16 {
        match self {
            RegistrarError::IntervalTooBrief { .. } => 423,
            RegistrarError::OutOfOrder => 500,
            RegistrarError::InvalidStar => 400,
            RegistrarError::NotFound => 404,
            RegistrarError::TooManyContacts => 403,
            RegistrarError::Store(StoreError::QueueFull(_)) => 486,
            RegistrarError::Store(_) => 503,
        }
    }
}

/// A page-mode MESSAGE (RFC 3428), carried as its end-to-end parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageMessage {
    /// The Request-URI's AOR.
    pub target: Aor,
    /// From and To header values as received.
    pub from: String,
    pub to: String,
    pub call_id: String,
    pub cseq: u32,
    pub content_type: Option<String>,
    /// End-to-end headers carried unchanged (Subject, Date, ...).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Max-Forwards left for the delivery leg (received minus one).
    pub max_forwards: u8,
    /// The request's Via values, top first (kept below Herald's own on a
    /// live delivery).
    pub vias: Vec<String>,
    /// The identity the edge authenticated (digest), `None` when the edge
    /// runs without authentication. Set by the edge only, never from a
    /// header a client wrote.
    pub authenticated: Option<Aor>,
}

/// How a MESSAGE was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageOutcome {
    /// A contact accepted it with this 2xx status.
    Delivered { status: u16 },
    /// Nobody online: queued for later delivery (202, RFC 3428 §7).
    Stored,
    /// Every contact refused it; the best final response (§16.7 choice).
    Rejected { status: u16, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessagingError {
    /// No such user in a provisioned directory (404).
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MessagingError {
    pub fn status(&self) -> u16 {
        match self {
            MessagingError::NotFound => 404,
            // Queue full: the recipient cannot take more now (RFC 3261 §21.4.25).
            MessagingError::Store(StoreError::QueueFull(_)) => 486,
            MessagingError::Store(_) => 503,
        }
    }
}

#[async_trait]
pub trait Messaging: Send + Sync + 'static {
    /// Applies a REGISTER; returns the AOR's bindings afterwards.
    async fn register(&self, request: RegisterRequest) -> Result<Vec<Binding>, RegistrarError>;

    /// Delivers a MESSAGE to every contact of its target, or queues it.
    async fn message(&self, message: PageMessage) -> Result<MessageOutcome, MessagingError>;
}
