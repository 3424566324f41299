//! Herald's SIP layer.
//!
//! Owns: framing of SIP messages on streams and datagrams, parsing into
//! Herald's own types, serialization, typed access to the headers Herald
//! uses, the `Aor` type, and explicit size limits.
//!
//! Must never: panic on any input, or leak `rsip` types. Nothing outside
//! this crate names `rsip`. The parsers here are hand-written: besides the
//! gaps STACK.md lists (Content-Length ignored, no compact forms, folding,
//! extension methods or LF-only lines, no limits), rsip 0.4.0's URI and Via
//! grammar is wrong for users with `.`/`;`/`?`, URI headers, IPv6 hosts and
//! tel URIs (see `grammar.rs`), so nothing of it was left to use.
//!
//! Main types: [`Message`], [`Request`], [`Response`], [`Headers`],
//! [`Uri`], [`NameAddr`], [`Via`], [`Aor`], [`CodecError`], [`Limits`].
//! Entry points: [`frame_stream`] (TCP/TLS framing), [`parse`] (one
//! message), [`error_response`] (the answer to a request `parse` rejected).

mod aor;
mod codec;
mod error;
mod grammar;
mod header;
mod message;
mod typed;
mod uri;

pub use aor::Aor;
pub use codec::{error_response, frame_stream, parse, Frame, Limits};
pub use error::CodecError;
pub use header::{Header, HeaderName, Headers};
pub use message::{Message, Method, Request, Response};
pub use typed::{CSeq, Contact, ContactList, EventHeader, NameAddr, SubscriptionState, Via};
pub use uri::{Scheme, Uri};

/// The `SIP/2.0` version token every message carries.
pub const SIP_VERSION: &str = "SIP/2.0";

/// The RFC 3261 §8.1.1.7 magic cookie that starts every compliant branch.
pub const BRANCH_COOKIE: &str = "z9hG4bK";
