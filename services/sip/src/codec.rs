//! Framing and parsing. RFC 3261 §7.5 (framing over streams with
//! Content-Length), §18.3 (datagrams), RFC 5626 §3.5.1 (CRLF keep-alives).

use crate::error::CodecError;
use crate::message::Message;

/// Explicit size limits. Every parse is bounded by these.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Whole message (head + body), bytes. Over it: `TooLarge` (413 when
    /// the head could be read, else the connection is closed).
    pub max_message_size: usize,
    /// Head (start line + headers), bytes.
    pub max_head_size: usize,
    /// Number of header field lines.
    pub max_headers: usize,
    /// Body, bytes (`BodyTooLarge`, 413).
    pub max_body_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 65_535,
            max_head_size: 16_384,
            max_headers: 128,
            max_body_size: 60_000,
        }
    }
}

/// What the next bytes of a stream hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes yet.
    Incomplete,
    /// A CRLFCRLF keep-alive ping of `usize` bytes: answer with one CRLF
    /// (RFC 5626 §3.5.1) and skip it.
    Ping(usize),
    /// Stray CRLFs (a pong, or RFC 3261 §7.5 leading line ends) to skip.
    Skip(usize),
    /// A whole message of this many bytes starts at offset 0.
    Message(usize),
}

/// Finds the next frame in a stream buffer (TCP, TLS). Reads
/// Content-Length (compact `l` too); a missing Content-Length on a stream
/// is an error (RFC 3261 §18.3). Errors when the head or the message
/// exceeds the limits, so the caller can answer 413/400 and close.
pub fn frame_stream(buf: &[u8], limits: &Limits) -> Result<Frame, CodecError> {
    todo!()
}

/// Parses one whole message: a UDP datagram, a WebSocket frame, or a
/// slice cut by [`frame_stream`]. On datagrams a missing Content-Length
/// means the body runs to the end; a Content-Length larger than the bytes
/// received is an error; bytes after the announced length are discarded
/// (RFC 3261 §18.3).
///
/// Accepts what rsip does not: compact header names, folded lines,
/// LF-only line ends, extension methods, leading CRLFs. Checks the
/// mandatory headers of RFC 3261 §8.1.1 for requests (To, From, CSeq,
/// Call-ID, Max-Forwards is optional on receipt, Via) and that the CSeq
/// method matches the request method.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Message, CodecError> {
    todo!()
}
