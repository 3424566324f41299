//! Socket loops. Each turns bytes from the network into calls to
//! [`crate::Edge::receive`] with the flow they came over.

pub(crate) mod tcp;
pub(crate) mod udp;
pub(crate) mod ws;
