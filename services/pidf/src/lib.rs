//! Presence documents for Herald: PIDF (RFC 3863) with the RFC 4479 data model and RFC 4480
//! RPID, their composition into one document per presentity, and watcher information
//! (RFC 3858).
//!
//! # What this crate owns
//!
//! - Reading a published body into a [`PidfDocument`] ([`PidfDocument::parse`]), checked
//!   against explicit [`XmlLimits`]. Tuples, persons and devices are kept as [`Fragment`]s:
//!   the XML the publisher sent, made portable by re-declaring on each fragment the
//!   namespaces it inherited, so RPID, CIPID, capabilities and vendor extensions reach
//!   watchers unchanged without this crate knowing them.
//! - Comparing a document's entity with a presentity ([`entity_matches`]).
//! - Composing the publications of one presentity ([`compose`], [`offline`]) into a
//!   [`ComposedDocument`] whose equality (or [`ComposedDocument::digest`]) says whether
//!   watchers need a NOTIFY.
//! - Watcher-info documents ([`WatcherInfo`]): writing them for presence.winfo
//!   subscribers, and reading them for tests and clients.
//! - Authorization views ([`filter`] with a [`Transformations`] permission set, RFC 5025
//!   §3.3): what one watcher may see of a composed document.
//! - One error enum, [`PidfError`], with its SIP status ([`PidfError::sip_status`]).
//!
//! # What it must never do
//!
//! - Panic, or do unbounded work, on any input: bodies come from the network.
//! - Resolve a DOCTYPE, an external entity or anything else beyond the bytes given.
//! - Drop or rewrite what it does not understand inside a kept element.
//! - Know about SIP, storage or other Herald crates: entities are plain URI strings
//!   (`sip:user@host`), and the presence service decides what to do with each error.
//!
//! Evaluating pres-rules (RFC 5025) and partial PIDF (RFC 5262) build on these types but live
//! in the presence service.

mod compose;
mod document;
mod entity;
mod error;
mod filter;
mod limits;
mod watcherinfo;
mod xml;

pub use compose::{compose, offline, ComposedDocument, PublicationOrder};
pub use document::{BasicStatus, Device, Note, Person, PidfDocument, Tuple};
pub use entity::entity_matches;
pub use error::{ElementKind, PidfError};
pub use filter::{filter, sphere, Attribute, Provide, Selector, Transformations};
pub use limits::XmlLimits;
pub use watcherinfo::{
    Watcher, WatcherEvent, WatcherInfo, WatcherInfoState, WatcherList, WatcherStatus,
};
pub use xml::{Fragment, DATA_MODEL_NS, PIDF_NS, RPID_NS, WATCHERINFO_NS};

/// The MIME type of PIDF documents (RFC 3863 §4).
pub const PIDF_CONTENT_TYPE: &str = "application/pidf+xml";
