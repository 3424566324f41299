//! The `api` traits served over gRPC: wrap the role's in-process
//! implementation and add the service to a `tonic::transport::Server`.
//!
//! What the role returns, success or error, goes back in the response
//! (`oneof result`); a tonic `Status` is only for what the role never saw.
//! A request that does not decode is answered without calling the role:
//! with the role's own "bad request" variant where its error has one
//! (`PresenceError::BadRequest`, `DeliveryError::Invalid`), otherwise
//! with `InvalidArgument`.

use std::sync::Arc;

use api::{EdgeDelivery, Messaging, Presence, PresenceError};
use store::FlowToken;
use tonic::{Request, Response, Status};

use crate::convert::DecodeError;
use crate::edge::v1 as edge_pb;
use crate::edge::v1::edge_delivery_server::{self, EdgeDeliveryServer};
use crate::messaging::v1 as messaging_pb;
use crate::messaging::v1::messaging_server::{self, MessagingServer};
use crate::presence::v1 as presence_pb;
use crate::presence::v1::presence_server::{self, PresenceServer};

/// Serves `inner` as `herald.messaging.v1.Messaging`.
pub fn messaging_service(inner: Arc<dyn Messaging>) -> MessagingServer<MessagingService> {
    MessagingServer::new(MessagingService { inner })
}

/// Serves `inner` as `herald.presence.v1.Presence`.
pub fn presence_service(inner: Arc<dyn Presence>) -> PresenceServer<PresenceService> {
    PresenceServer::new(PresenceService { inner })
}

/// Serves `inner` as `herald.edge.v1.EdgeDelivery`.
pub fn edge_delivery_service(
    inner: Arc<dyn EdgeDelivery>,
) -> EdgeDeliveryServer<EdgeDeliveryService> {
    EdgeDeliveryServer::new(EdgeDeliveryService { inner })
}

fn invalid(e: DecodeError) -> Status {
    tracing::warn!(error = %e, "malformed gRPC request");
    Status::invalid_argument(e.to_string())
}

/// The tonic side of an `api::Messaging`; made by [`messaging_service`].
pub struct MessagingService {
    inner: Arc<dyn Messaging>,
}

#[tonic::async_trait]
impl messaging_server::Messaging for MessagingService {
    async fn register(
        &self,
        request: Request<messaging_pb::RegisterRequest>,
    ) -> Result<Response<messaging_pb::RegisterResponse>, Status> {
        // RegistrarError has no "bad request" variant to answer with.
        let request = request.into_inner().try_into().map_err(invalid)?;
        let result = self.inner.register(request).await;
        Ok(Response::new(result.into()))
    }

    async fn message(
        &self,
        request: Request<messaging_pb::PageMessage>,
    ) -> Result<Response<messaging_pb::MessageResponse>, Status> {
        let message = request.into_inner().try_into().map_err(invalid)?;
        let result = self.inner.message(message).await;
        Ok(Response::new(result.into()))
    }
}

/// The tonic side of an `api::Presence`; made by [`presence_service`].
pub struct PresenceService {
    inner: Arc<dyn Presence>,
}

fn bad_request(e: DecodeError) -> PresenceError {
    tracing::warn!(error = %e, "malformed gRPC request");
    PresenceError::BadRequest(e.to_string())
}

#[tonic::async_trait]
impl presence_server::Presence for PresenceService {
    async fn publish(
        &self,
        request: Request<presence_pb::PublishRequest>,
    ) -> Result<Response<presence_pb::PublishResponse>, Status> {
        let result = match request.into_inner().try_into() {
            Ok(request) => self.inner.publish(request).await,
            Err(e) => Err(bad_request(e)),
        };
        Ok(Response::new(result.into()))
    }

    async fn subscribe(
        &self,
        request: Request<presence_pb::SubscribeRequest>,
    ) -> Result<Response<presence_pb::SubscribeResponse>, Status> {
        let result = match request.into_inner().try_into() {
            Ok(request) => self.inner.subscribe(request).await,
            Err(e) => Err(bad_request(e)),
        };
        Ok(Response::new(result.into()))
    }

    async fn flow_closed(
        &self,
        request: Request<presence_pb::FlowClosedRequest>,
    ) -> Result<Response<presence_pb::FlowClosedResponse>, Status> {
        let flow = FlowToken::try_from(request.into_inner()).map_err(invalid)?;
        self.inner.flow_closed(flow).await;
        Ok(Response::new(presence_pb::FlowClosedResponse {}))
    }

    async fn documents_changed(
        &self,
        request: Request<presence_pb::DocumentsChangedRequest>,
    ) -> Result<Response<presence_pb::DocumentsChangedResponse>, Status> {
        let result = match request.into_inner().try_into() {
            Ok(change) => self.inner.documents_changed(change).await,
            Err(e) => Err(bad_request(e)),
        };
        Ok(Response::new(result.into()))
    }
}

/// The tonic side of an `api::EdgeDelivery`; made by
/// [`edge_delivery_service`].
pub struct EdgeDeliveryService {
    inner: Arc<dyn EdgeDelivery>,
}

#[tonic::async_trait]
impl edge_delivery_server::EdgeDelivery for EdgeDeliveryService {
    async fn send_request(
        &self,
        request: Request<edge_pb::SendRequestRequest>,
    ) -> Result<Response<edge_pb::SendRequestResponse>, Status> {
        let result = match <(FlowToken, _)>::try_from(request.into_inner()) {
            Ok((flow, request)) => self.inner.send_request(&flow, request).await,
            Err(e) => {
                tracing::warn!(error = %e, "malformed gRPC request");
                Err(api::DeliveryError::Invalid(e.to_string()))
            }
        };
        Ok(Response::new(result.into()))
    }
}
