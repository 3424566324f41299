use thiserror::Error;

/// Why bytes could not become a [`crate::Message`], or why a header could
/// not be read as its type. Each cause maps to one SIP status in
/// [`CodecError::status`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The message (headers plus body) is larger than [`crate::Limits`] allows.
    #[error("message too large: {size} bytes, limit {limit}")]
    TooLarge { size: usize, limit: usize },
    /// The body is larger than the limit (RFC 3261 §21.4.11: 413).
    #[error("body too large: {size} bytes, limit {limit}")]
    BodyTooLarge { size: usize, limit: usize },
    /// More header fields than the limit allows.
    #[error("too many header fields (limit {limit})")]
    TooManyHeaders { limit: usize },
    /// The start line is not a request line nor a status line.
    #[error("bad start line: {0}")]
    BadStartLine(String),
    /// The version is not SIP/2.0 (RFC 3261 §21.5.6: 505).
    #[error("unsupported SIP version: {0}")]
    BadVersion(String),
    /// The Request-URI scheme is not sip, sips or tel (RFC 3261 §8.2.2.1: 416).
    #[error("unsupported URI scheme: {0}")]
    UnsupportedScheme(String),
    /// A header line that is not `name: value`.
    #[error("malformed header line")]
    BadHeaderLine,
    /// A header required by RFC 3261 §8.1.1 is absent.
    #[error("missing mandatory header {0}")]
    MissingHeader(&'static str),
    /// A header is present but its value does not follow its grammar.
    #[error("invalid {header} header: {reason}")]
    InvalidHeader {
        header: &'static str,
        reason: String,
    },
    /// Content-Length disagrees with the bytes received (datagram shorter
    /// than announced, or a negative or non-numeric value).
    #[error("bad Content-Length: {0}")]
    BadContentLength(String),
    /// The URI does not follow RFC 3261 §25 grammar.
    #[error("invalid URI: {0}")]
    InvalidUri(String),
    /// The bytes are not a message at all (for example not UTF-8 in the head).
    #[error("not a SIP message: {0}")]
    Garbage(String),
}

impl CodecError {
    /// The status a server answers with when a request fails this way, or
    /// `None` when the request should be dropped silently (nothing usable
    /// to answer to).
    pub fn status(&self) -> Option<u16> {
        match self {
            CodecError::TooLarge { .. } | CodecError::BodyTooLarge { .. } => Some(413),
            CodecError::BadVersion(_) => Some(505),
            CodecError::UnsupportedScheme(_) => Some(416),
            CodecError::Garbage(_) => None,
            _ => Some(400),
        }
    }
}
