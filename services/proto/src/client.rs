//! The `api` traits over gRPC, for the caller's side: what the edge holds
//! instead of an in-process `Messaging`/`Presence`, and what a shard holds
//! instead of an in-process `EdgeDelivery`.
//!
//! Every call has a deadline ([`ClientConfig::deadline`]): it travels as
//! `grpc-timeout` so the server stops working on it, and the client stops
//! waiting at the same moment whatever the server does. A call that fails
//! in transport (peer down, refused, deadline) becomes the error the edge
//! answers 503 to (`StoreError::Unavailable`), or for `EdgeDelivery` a
//! `Timeout` or `Transport` failure, which services already treat as "no
//! answer".
//!
//! Every call carries the caller's trace context (W3C `traceparent` in the
//! metadata) and is timed, through [`telemetry::grpc::ClientCall`].

use std::future::Future;
use std::time::Duration;

use api::{
    Binding, DeliveryError, DocumentChange, EdgeDelivery, FinalResponse, MessageOutcome, Messaging,
    MessagingError, OutboundRequest, PageMessage, Presence, PresenceError, PublishOk,
    PublishRequest, RegisterRequest, RegistrarError, SubscribeOk, SubscribeRequest,
};
use async_trait::async_trait;
use store::{FlowToken, StoreError};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::convert::DecodeError;
use crate::edge::v1::edge_delivery_client::EdgeDeliveryClient;
use crate::messaging::v1::messaging_client::MessagingClient;
use crate::presence::v1::presence_client::PresenceClient;

/// How a client adapter reaches its peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Bound on opening the HTTP/2 connection (it opens lazily, on the
    /// first call, and again after it breaks).
    pub connect_timeout: Duration,
    /// Bound on each call, connecting included.
    pub deadline: Duration,
}

impl ClientConfig {
    /// For calls to the messaging and presence roles: a MESSAGE waits for
    /// its delivery legs (messaging's `delivery_timeout`, 10 s by default),
    /// so 15 s leaves it room and still answers a client before its own
    /// Timer F (32 s, RFC 3261 §17.1.2.2) runs out.
    pub const SERVICE_DEFAULT: ClientConfig = ClientConfig {
        connect_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(15),
    };

    /// For `EdgeDelivery`: the edge waits up to Timer F (32 s) for the
    /// client's final response and answers `Timeout` itself, so the
    /// deadline sits just past it.
    pub const DELIVERY_DEFAULT: ClientConfig = ClientConfig {
        connect_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(34),
    };
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig::SERVICE_DEFAULT
    }
}

/// A channel to `uri` (`http://host:port`, or `host:port`, taken as
/// `http://`) that connects on first use and reconnects after a failure.
/// One channel may back several adapters to the same peer, each with its
/// own deadline (the channel has none: each call carries it). Fails only
/// on a malformed URI.
pub fn channel(
    uri: impl Into<String>,
    config: &ClientConfig,
) -> Result<Channel, tonic::transport::Error> {
    let mut uri = uri.into();
    // tonic accepts a bare authority here and only fails at the first
    // call ("InvalidUri"), which made `--presence-shards host:port` a
    // cluster that answers 503 to everything.
    if !uri.contains("://") {
        uri.insert_str(0, "http://");
    }
    Ok(Endpoint::from_shared(uri)?
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

/// `api::Messaging` served by a messaging shard over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcMessaging {
    client: MessagingClient<Channel>,
    deadline: Duration,
}

impl GrpcMessaging {
    pub fn new(channel: Channel, config: &ClientConfig) -> Self {
        GrpcMessaging {
            client: MessagingClient::new(channel),
            deadline: config.deadline,
        }
    }

    /// A client for the shard at `uri`, connecting lazily.
    pub fn connect_lazy(
        uri: impl Into<String>,
        config: &ClientConfig,
    ) -> Result<Self, tonic::transport::Error> {
        Ok(GrpcMessaging::new(channel(uri, config)?, config))
    }
}

#[async_trait]
impl Messaging for GrpcMessaging {
    async fn register(&self, request: RegisterRequest) -> Result<Vec<Binding>, RegistrarError> {
        let mut client = self.client.clone();
        let response = unary(self.deadline, request.into(), |r| async move {
            client.register(r).await
        })
        .await;
        match response {
            Ok(r) => r
                .try_into()
                .unwrap_or_else(|e| Err(RegistrarError::Store(malformed("messaging", &e)))),
            Err(status) => Err(RegistrarError::Store(unavailable("messaging", &status))),
        }
    }

    async fn message(&self, message: PageMessage) -> Result<MessageOutcome, MessagingError> {
        let mut client = self.client.clone();
        let response = unary(self.deadline, message.into(), |r| async move {
            client.message(r).await
        })
        .await;
        match response {
            Ok(r) => r
                .try_into()
                .unwrap_or_else(|e| Err(MessagingError::Store(malformed("messaging", &e)))),
            Err(status) => Err(MessagingError::Store(unavailable("messaging", &status))),
        }
    }
}

/// `api::Presence` served by a presence shard over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcPresence {
    client: PresenceClient<Channel>,
    deadline: Duration,
}

impl GrpcPresence {
    pub fn new(channel: Channel, config: &ClientConfig) -> Self {
        GrpcPresence {
            client: PresenceClient::new(channel),
            deadline: config.deadline,
        }
    }

    /// A client for the shard at `uri`, connecting lazily.
    pub fn connect_lazy(
        uri: impl Into<String>,
        config: &ClientConfig,
    ) -> Result<Self, tonic::transport::Error> {
        Ok(GrpcPresence::new(channel(uri, config)?, config))
    }
}

/// What a failed presence call becomes: our own server answers a request
/// it cannot read with `InvalidArgument` (400 here too); anything else is
/// the shard being unreachable (503).
fn presence_status(status: &Status) -> PresenceError {
    match status.code() {
        Code::InvalidArgument => PresenceError::BadRequest(status.message().to_owned()),
        _ => PresenceError::Store(unavailable("presence", status)),
    }
}

#[async_trait]
impl Presence for GrpcPresence {
    async fn publish(&self, request: PublishRequest) -> Result<PublishOk, PresenceError> {
        let mut client = self.client.clone();
        let response = unary(self.deadline, request.into(), |r| async move {
            client.publish(r).await
        })
        .await;
        match response {
            Ok(r) => r
                .try_into()
                .unwrap_or_else(|e| Err(PresenceError::Store(malformed("presence", &e)))),
            Err(status) => Err(presence_status(&status)),
        }
    }

    async fn subscribe(&self, request: SubscribeRequest) -> Result<SubscribeOk, PresenceError> {
        let mut client = self.client.clone();
        let response = unary(self.deadline, request.into(), |r| async move {
            client.subscribe(r).await
        })
        .await;
        match response {
            Ok(r) => r
                .try_into()
                .unwrap_or_else(|e| Err(PresenceError::Store(malformed("presence", &e)))),
            Err(status) => Err(presence_status(&status)),
        }
    }

    async fn flow_closed(&self, flow: FlowToken) {
        let mut client = self.client.clone();
        let token = flow.0.clone();
        let response = unary(self.deadline, flow.into(), |r| async move {
            client.flow_closed(r).await
        })
        .await;
        // The trait has no error to give: the shard also ends what that
        // flow carried when its NOTIFYs fail or its publications expire.
        if let Err(status) = response {
            tracing::warn!(flow = %token, %status, "flow_closed did not reach the presence shard");
        }
    }

    async fn documents_changed(&self, change: DocumentChange) -> Result<(), PresenceError> {
        let mut client = self.client.clone();
        let response = unary(self.deadline, change.into(), |r| async move {
            client.documents_changed(r).await
        })
        .await;
        match response {
            Ok(r) => r
                .try_into()
                .unwrap_or_else(|e| Err(PresenceError::Store(malformed("presence", &e)))),
            Err(status) => Err(presence_status(&status)),
        }
    }
}

/// `api::EdgeDelivery` served by the edge that holds the flow, over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcEdgeDelivery {
    client: EdgeDeliveryClient<Channel>,
    deadline: Duration,
}

impl GrpcEdgeDelivery {
    pub fn new(channel: Channel, config: &ClientConfig) -> Self {
        GrpcEdgeDelivery {
            client: EdgeDeliveryClient::new(channel),
            deadline: config.deadline,
        }
    }

    /// A client for the edge at `uri`, connecting lazily.
    pub fn connect_lazy(
        uri: impl Into<String>,
        config: &ClientConfig,
    ) -> Result<Self, tonic::transport::Error> {
        Ok(GrpcEdgeDelivery::new(channel(uri, config)?, config))
    }
}

#[async_trait]
impl EdgeDelivery for GrpcEdgeDelivery {
    async fn send_request(
        &self,
        flow: &FlowToken,
        request: OutboundRequest,
    ) -> Result<FinalResponse, DeliveryError> {
        let mut client = self.client.clone();
        let response = unary(
            self.deadline,
            (flow.clone(), request).into(),
            |r| async move { client.send_request(r).await },
        )
        .await;
        match response {
            Ok(r) => r.try_into().unwrap_or_else(|e: DecodeError| {
                Err(DeliveryError::Transport(format!(
                    "malformed answer from the edge: {e}"
                )))
            }),
            Err(status) => Err(match status.code() {
                // Our deadline, or the server's copy of it (tonic answers
                // `Cancelled` when a `grpc-timeout` runs out).
                Code::DeadlineExceeded | Code::Cancelled => DeliveryError::Timeout,
                Code::InvalidArgument => DeliveryError::Invalid(status.message().to_owned()),
                _ => DeliveryError::Transport(format!(
                    "edge unreachable: {}: {}",
                    status.code(),
                    status.message()
                )),
            }),
        }
    }
}

/// One unary call with `deadline`: sent as `grpc-timeout` for the server,
/// and enforced here so a peer that never answers (or a connection that
/// never opens) cannot hold the caller past it.
async fn unary<Req, Resp, F, Fut>(deadline: Duration, message: Req, call: F) -> Result<Resp, Status>
where
    F: FnOnce(Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
{
    let mut request = Request::new(message);
    request.set_timeout(deadline);
    // The caller's trace goes along in the metadata (W3C traceparent).
    let traced = telemetry::grpc::ClientCall::start::<Req>(request.metadata_mut());
    match traced
        .run(tokio::time::timeout(deadline, call(request)))
        .await
    {
        Ok(result) => result.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no answer within {deadline:?}"
        ))),
    }
}

fn unavailable(role: &str, status: &Status) -> StoreError {
    tracing::debug!(role, %status, "gRPC call failed");
    StoreError::Unavailable(format!(
        "{role} shard: {}: {}",
        status.code(),
        status.message()
    ))
}

fn malformed(role: &str, e: &DecodeError) -> StoreError {
    tracing::warn!(role, error = %e, "malformed gRPC answer");
    StoreError::Unavailable(format!("malformed answer from the {role} shard: {e}"))
}
