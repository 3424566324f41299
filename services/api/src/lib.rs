//! The interfaces between Herald's roles.
//!
//! Owns: the traits a role calls on another ([`Messaging`] and [`Presence`],
//! called by the edge; [`EdgeDelivery`], called by services to reach a client) and the
//! typed messages that cross them. In one process they are plain method
//! calls; in the cluster the same traits are implemented by gRPC clients
//! and servers, so a role never knows which it talks to.
//!
//! Must never: carry SIP wire bytes. The edge alone reads and writes SIP;
//! what crosses a role boundary is typed.

mod delivery;
mod documents;
mod messaging;
mod presence;

pub use delivery::{DeliveryError, EdgeDelivery, FinalResponse, OutboundRequest};
pub use documents::DocumentChange;
pub use messaging::{
    ContactSpec, MessageOutcome, Messaging, MessagingError, PageMessage, RegisterContacts,
    RegisterRequest, RegistrarError,
};
pub use presence::{
    ETag, Presence, PresenceError, PublishOk, PublishRequest, SubscribeDialog, SubscribeOk,
    SubscribeRequest, PRESENCE_EVENTS,
};
pub use store::{Binding, FlowToken, UnixTime};
