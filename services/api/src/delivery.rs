//! Services reach clients through the edge that holds their flow.

use async_trait::async_trait;
use bytes::Bytes;
use sip::Method;
use thiserror::Error;

use store::FlowToken;

/// A request a service asks an edge to send as a new client transaction
/// (RFC 3261 §17.1.2). The edge adds Via, Max-Forwards and Content-Length.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: Method,
    /// Request-URI: the registered contact (or the remote target of a
    /// dialog).
    pub uri: String,
    pub from: String,
    pub to: String,
    pub call_id: String,
    pub cseq: u32,
    /// Vias to keep below ours, top first: the sender's, when Herald
    /// relays a request as a proxy (RFC 3261 §16.6 step 8), so loops show
    /// and the path stays visible. Empty for requests Herald originates.
    pub relayed_vias: Vec<String>,
    /// Route set, in order (empty outside a dialog).
    pub route: Vec<String>,
    pub content_type: Option<String>,
    /// Other headers to send as they are.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Max-Forwards to send (70 for requests Herald originates; one less
    /// than received for a relayed MESSAGE, so loops between servers end).
    pub max_forwards: u8,
    /// RFC 5626 outbound: the client asked to be reached over its flow
    /// only (it registered with +sip.instance and reg-id).
    pub flow_only: bool,
}

/// The final response that ended the client transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalResponse {
    pub status: u16,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeliveryError {
    /// The connection the flow named is closed; the client must come back.
    #[error("flow {0} is gone")]
    FlowGone(String),
    /// No final response before Timer F (RFC 3261 §17.1.2.2) or the
    /// caller's deadline.
    #[error("request timed out")]
    Timeout,
    /// The transport refused the bytes.
    #[error("transport error: {0}")]
    Transport(String),
    /// The request could not be built (a bad contact URI, say).
    #[error("cannot build request: {0}")]
    Invalid(String),
}

#[async_trait]
pub trait EdgeDelivery: Send + Sync + 'static {
    /// Sends `request` over `flow` and waits for its final response.
    async fn send_request(
        &self,
        flow: &FlowToken,
        request: OutboundRequest,
    ) -> Result<FinalResponse, DeliveryError>;
}
