//! Herald's gRPC layer: the contracts between roles, and the adapters that
//! carry the `api` traits over them.
//!
//! Owns: the code generated from the top-level `proto/` (one package per
//! service, modules [`common`], [`messaging`], [`presence`], [`edge`]), the
//! conversions between those messages and the `api` types ([`convert`],
//! with [`DecodeError`]), tonic clients that implement the `api` traits
//! ([`GrpcMessaging`], [`GrpcPresence`], [`GrpcEdgeDelivery`]), and the
//! functions that serve an `api` trait object as a tonic service
//! ([`messaging_service`], [`presence_service`], [`edge_delivery_service`]).
//!
//! Errors travel in the response (`oneof result { ok, error }`), typed per
//! variant, so the edge answers the same SIP response whether the role is
//! in its process or across the network. A transport failure (shard down,
//! deadline passed) becomes the variant the edge answers 503 to
//! (`StoreError::Unavailable`), or a delivery failure for `EdgeDelivery`.
//!
//! Must never: carry SIP wire bytes (bodies are bodies, headers are typed
//! pairs), or panic on what arrives from the wire: a malformed message is an
//! error answer.

mod client;
pub mod convert;
mod router;
mod server;

pub use client::{channel, ClientConfig, GrpcEdgeDelivery, GrpcMessaging, GrpcPresence};
pub use convert::DecodeError;
pub use router::EdgeRouter;
pub use server::{
    edge_delivery_service, messaging_service, presence_service, EdgeDeliveryService,
    MessagingService, PresenceService,
};

/// `herald.common.v1`: messages every contract shares.
pub mod common {
    pub mod v1 {
        #![allow(clippy::all)]
        tonic::include_proto!("herald.common.v1");
    }
}

/// `herald.messaging.v1`: registrar and page-mode MESSAGE.
pub mod messaging {
    pub mod v1 {
        #![allow(clippy::all)]
        tonic::include_proto!("herald.messaging.v1");
    }
}

/// `herald.presence.v1`: PUBLISH, SUBSCRIBE, closed flows.
pub mod presence {
    pub mod v1 {
        #![allow(clippy::all)]
        tonic::include_proto!("herald.presence.v1");
    }
}

/// `herald.edge.v1`: the reverse path, a service sending through an edge.
pub mod edge {
    pub mod v1 {
        #![allow(clippy::all)]
        tonic::include_proto!("herald.edge.v1");
    }
}
