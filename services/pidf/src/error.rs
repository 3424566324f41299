//! The one error type of this crate and its single mapping to a SIP status code.

use std::fmt;

/// The kinds of identified elements a PIDF document carries (RFC 3863 tuples, RFC 4479
/// persons and devices). Ids must be unique within one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ElementKind {
    /// `<tuple>` in `urn:ietf:params:xml:ns:pidf` (RFC 3863 §4.1.2).
    Tuple,
    /// `<person>` in `urn:ietf:params:xml:ns:pidf:data-model` (RFC 4479 §3.4).
    Person,
    /// `<device>` in `urn:ietf:params:xml:ns:pidf:data-model` (RFC 4479 §3.3).
    Device,
}

impl fmt::Display for ElementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElementKind::Tuple => "tuple",
            ElementKind::Person => "person",
            ElementKind::Device => "device",
        })
    }
}

/// Why a PIDF or watcher-info document was refused.
///
/// Every variant names one cause; [`PidfError::sip_status`] is the one place that turns them
/// into a SIP response code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PidfError {
    /// The body is larger than [`crate::XmlLimits::max_bytes`].
    #[error("document of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the body received.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Elements nest deeper than [`crate::XmlLimits::max_depth`].
    #[error("elements nest deeper than {limit} levels")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// More elements than [`crate::XmlLimits::max_elements`].
    #[error("document has more than {limit} elements")]
    TooManyElements {
        /// The configured limit.
        limit: usize,
    },
    /// One element has more attributes than [`crate::XmlLimits::max_attributes`].
    #[error("an element has more than {limit} attributes")]
    TooManyAttributes {
        /// The configured limit.
        limit: usize,
    },
    /// More namespace bindings in scope than [`crate::XmlLimits::max_namespace_bindings`].
    #[error("more than {limit} namespace bindings in scope")]
    TooManyNamespaces {
        /// The configured limit.
        limit: usize,
    },
    /// The body is not valid UTF-8 (RFC 3863 §4: PIDF is UTF-8).
    #[error("document is not valid UTF-8")]
    NotUtf8,
    /// The XML declaration names an encoding other than UTF-8.
    #[error("document declares encoding {declared:?}; only UTF-8 is accepted")]
    UnsupportedEncoding {
        /// The `encoding` of the XML declaration.
        declared: String,
    },
    /// A `<!DOCTYPE>`: refused, so no entity can be defined or expanded.
    #[error("DOCTYPE declarations are not allowed")]
    DoctypeNotAllowed,
    /// The body is not well-formed (namespace-well-formed) XML.
    #[error("not well-formed XML at byte {offset}: {detail}")]
    NotWellFormed {
        /// Byte offset in the body near which the problem was found.
        offset: u64,
        /// What the XML reader reported.
        detail: String,
    },
    /// The root element is not in the namespace the document type requires.
    #[error("root element is in namespace {found:?}, expected {expected}")]
    WrongNamespace {
        /// The namespace required (`urn:ietf:params:xml:ns:pidf`, ...).
        expected: &'static str,
        /// The namespace found, `None` when the root has no namespace.
        found: Option<String>,
    },
    /// The root element has the right namespace but the wrong name.
    #[error("root element is <{found}>, expected <{expected}>")]
    WrongRootElement {
        /// The local name required.
        expected: &'static str,
        /// The local name found.
        found: String,
    },
    /// `<presence>` without its required `entity` attribute (RFC 3863 §4.1.1).
    #[error("presence element has no entity attribute")]
    MissingEntity,
    /// The document's entity is not the presentity it was published for.
    #[error("document entity {entity} does not match presentity {presentity}")]
    EntityMismatch {
        /// The `entity` attribute of the document.
        entity: String,
        /// The presentity the caller expected.
        presentity: String,
    },
    /// A tuple, person or device without an `id` (RFC 3863 §4.1.2, RFC 4479 §3.3/3.4).
    #[error("{0} element has no id attribute")]
    MissingId(ElementKind),
    /// A tuple without `<status>` (RFC 3863 §4.1.4: status is mandatory).
    #[error("tuple {tuple_id:?} has no status element")]
    MissingStatus {
        /// The id of the tuple.
        tuple_id: String,
    },
    /// `<basic>` with a value other than `open` or `closed` (RFC 3863 §4.1.4).
    #[error("basic status {value:?} is neither open nor closed")]
    InvalidBasicStatus {
        /// The value found.
        value: String,
    },
    /// Two elements of one kind share an id.
    #[error("two {kind} elements have the id {id:?}")]
    DuplicateId {
        /// The kind of the elements.
        kind: ElementKind,
        /// The repeated id.
        id: String,
    },
    /// A required attribute is absent (watcher-info documents).
    #[error("<{element}> has no {attribute} attribute")]
    MissingAttribute {
        /// The element's local name.
        element: &'static str,
        /// The attribute's name.
        attribute: &'static str,
    },
    /// An attribute has a value outside its type (watcher-info documents).
    #[error("<{element}> has an invalid {attribute} value {value:?}")]
    InvalidAttribute {
        /// The element's local name.
        element: &'static str,
        /// The attribute's name.
        attribute: &'static str,
        /// The value found.
        value: String,
    },
}

impl PidfError {
    /// The SIP status a server answers a PUBLISH (or NOTIFY) carrying this body with:
    /// 413 Request Entity Too Large for an oversized body (RFC 3261 §21.4.11), 400 for
    /// everything else, since the body is malformed or not a valid document.
    pub fn sip_status(&self) -> u16 {
        match self {
            PidfError::TooLarge { .. } => 413,
            _ => 400,
        }
    }
}
