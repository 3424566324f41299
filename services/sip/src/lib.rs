//! Herald's SIP layer.
//!
//! Owns: framing of SIP messages on streams and datagrams, parsing into
//! Herald's own types, serialization, typed access to the headers Herald
//! uses, the `Aor` type, and explicit size limits.
//!
//! Must never: panic on any input, or leak `rsip` types. rsip (unmaintained
//! since 2022) is used underneath for URI and typed header grammar; its gaps
//! (it ignores Content-Length, misses compact header forms, rejects folding,
//! extension methods and LF-only lines, has no limits) are covered here
//! before it sees the bytes. Nothing outside this crate names `rsip`.
//!
//! Main types: [`Message`], [`Request`], [`Response`], [`Headers`],
//! [`Uri`], [`NameAddr`], [`Via`], [`Aor`], [`CodecError`], [`Limits`].

mod aor;
mod codec;
mod error;
mod header;
mod message;
mod typed;
mod uri;

pub use aor::Aor;
pub use codec::{frame_stream, parse, Frame, Limits};
pub use error::CodecError;
pub use header::{Header, HeaderName, Headers};
pub use message::{Message, Method, Request, Response};
pub use typed::{CSeq, Contact, ContactList, EventHeader, NameAddr, SubscriptionState, Via};
pub use uri::{Scheme, Uri};

/// The `SIP/2.0` version token every message carries.
pub const SIP_VERSION: &str = "SIP/2.0";

/// The RFC 3261 §8.1.1.7 magic cookie that starts every compliant branch.
pub const BRANCH_COOKIE: &str = "z9hG4bK";
