//! Requests and responses.

use bytes::Bytes;
use std::fmt;

use crate::header::{HeaderName, Headers};
use crate::uri::Uri;

/// A SIP method. Unknown tokens are kept as `Extension` so a server can
/// answer 405/501 instead of rejecting the message (RFC 3261 §8.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Register,
    Invite,
    Ack,
    Cancel,
    Bye,
    Options,
    Message,
    Subscribe,
    Notify,
    Publish,
    Info,
    Prack,
    Update,
    Refer,
    /// Any other token (methods are case-sensitive, RFC 3261 §7.1).
    Extension(String),
}

impl Method {
    /// Reads a method token; `None` when it is not an RFC 3261 token.
    pub fn parse(token: &str) -> Option<Method> {
        todo!()
    }
    pub fn as_str(&self) -> &str {
        todo!()
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SIP request. `uri` is the Request-URI; the body is kept as bytes and
/// its Content-Type is carried untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Bytes,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
    /// Serializes to wire bytes (see [`Request::to_bytes`]).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

impl Request {
    /// A request with no headers and an empty body.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Wire form: request line, headers in order with canonical names, a
    /// Content-Length computed from the body (any received Content-Length
    /// is replaced), blank line, body.
    pub fn to_bytes(&self) -> Bytes {
        todo!()
    }
}

impl Response {
    /// A response to `req` per RFC 3261 §8.2.6.2: copies every Via (in
    /// order), From, To, Call-ID and CSeq; the reason phrase is the
    /// standard one for `status` (or "Unknown"). Adds no To tag: callers
    /// add one with [`Response::set_to_tag`] where needed.
    pub fn for_request(req: &Request, status: u16) -> Response {
        todo!()
    }

    /// Sets the tag parameter of the To header unless it already has one.
    pub fn set_to_tag(&mut self, tag: &str) {
        todo!()
    }

    /// Standard reason phrase of RFC 3261 §21 (and 202, 412, 489, 423 ...).
    pub fn reason_phrase(status: u16) -> &'static str {
        todo!()
    }

    /// Wire form, as for requests.
    pub fn to_bytes(&self) -> Bytes {
        todo!()
    }

    pub fn is_final(&self) -> bool {
        self.status >= 200
    }

    pub fn header(&self, name: &HeaderName) -> Option<&str> {
        self.headers.get(name)
    }
}
