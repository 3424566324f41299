//! Requests and responses.

use bytes::Bytes;
use std::fmt;

use crate::grammar::is_token;
use crate::header::{HeaderName, Headers};
use crate::typed::header_param_present;
use crate::uri::Uri;
use crate::SIP_VERSION;

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
        use Method::*;
        Some(match token {
            "REGISTER" => Register,
            "INVITE" => Invite,
            "ACK" => Ack,
            "CANCEL" => Cancel,
            "BYE" => Bye,
            "OPTIONS" => Options,
            "MESSAGE" => Message,
            "SUBSCRIBE" => Subscribe,
            "NOTIFY" => Notify,
            "PUBLISH" => Publish,
            "INFO" => Info,
            "PRACK" => Prack,
            "UPDATE" => Update,
            "REFER" => Refer,
            t if is_token(t) => Extension(t.to_owned()),
            _ => return None,
        })
    }
    pub fn as_str(&self) -> &str {
        use Method::*;
        match self {
            Register => "REGISTER",
            Invite => "INVITE",
            Ack => "ACK",
            Cancel => "CANCEL",
            Bye => "BYE",
            Options => "OPTIONS",
            Message => "MESSAGE",
            Subscribe => "SUBSCRIBE",
            Notify => "NOTIFY",
            Publish => "PUBLISH",
            Info => "INFO",
            Prack => "PRACK",
            Update => "UPDATE",
            Refer => "REFER",
            Extension(s) => s,
        }
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
        let mut out = Vec::with_capacity(head_capacity(&self.headers) + 96 + self.body.len());
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        {
            use std::io::Write;
            // Writing into a Vec cannot fail.
            let _ = write!(out, "{}", self.uri);
        }
        out.push(b' ');
        out.extend_from_slice(SIP_VERSION.as_bytes());
        out.extend_from_slice(b"\r\n");
        write_headers_and_body(&mut out, &self.headers, &self.body);
        Bytes::from(out)
    }

    pub fn header(&self, name: &HeaderName) -> Option<&str> {
        self.headers.get(name)
    }
}

fn head_capacity(headers: &Headers) -> usize {
    headers
        .iter()
        .map(|h| h.name.as_str().len() + h.value.len() + 4)
        .sum::<usize>()
        + 32
}

/// Headers with canonical names (Content-Length dropped and recomputed),
/// blank line, body. CR and LF inside a value (set by code, never by the
/// parser, which unfolds) become spaces so no value can inject a header.
fn write_headers_and_body(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for h in headers.iter() {
        if h.name == HeaderName::ContentLength {
            continue;
        }
        out.extend_from_slice(h.name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        let v = h.value.as_bytes();
        if v.iter().any(|&b| b == b'\r' || b == b'\n') {
            out.extend(
                v.iter()
                    .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
            );
        } else {
            out.extend_from_slice(v);
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

impl Response {
    /// A response to `req` per RFC 3261 §8.2.6.2: copies every Via (in
    /// order), From, To, Call-ID and CSeq; the reason phrase is the
    /// standard one for `status` (or "Unknown"). Adds no To tag: callers
    /// add one with [`Response::set_to_tag`] where needed.
    pub fn for_request(req: &Request, status: u16) -> Response {
        let mut headers = Headers::new();
        for v in req.headers.get_all(&HeaderName::Via) {
            headers.push(HeaderName::Via, v);
        }
        for name in [
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            if let Some(v) = req.headers.get(&name) {
                headers.push(name, v);
            }
        }
        Response {
            status,
            reason: Response::reason_phrase(status).to_owned(),
            headers,
            body: Bytes::new(),
        }
    }

    /// Sets the tag parameter of the To header unless it already has one.
    pub fn set_to_tag(&mut self, tag: &str) {
        let Some(to) = self.headers.get(&HeaderName::To) else {
            return;
        };
        if header_param_present(to, "tag") {
            return;
        }
        // Append to the value as received so the rest of it stays byte-exact
        // (RFC 3261 §8.2.6.2: the To must otherwise equal the request's).
        let value = format!("{to};tag={tag}");
        self.headers.set(HeaderName::To, value);
    }

    /// Standard reason phrase of RFC 3261 §21 (and 202, 412, 489, 423 ...).
    pub fn reason_phrase(status: u16) -> &'static str {
        match status {
            100 => "Trying",
            180 => "Ringing",
            181 => "Call Is Being Forwarded",
            182 => "Queued",
            183 => "Session Progress",
            200 => "OK",
            202 => "Accepted",
            204 => "No Notification",
            300 => "Multiple Choices",
            301 => "Moved Permanently",
            302 => "Moved Temporarily",
            305 => "Use Proxy",
            380 => "Alternative Service",
            400 => "Bad Request",
            401 => "Unauthorized",
            402 => "Payment Required",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            407 => "Proxy Authentication Required",
            408 => "Request Timeout",
            410 => "Gone",
            412 => "Conditional Request Failed",
            413 => "Request Entity Too Large",
            414 => "Request-URI Too Long",
            415 => "Unsupported Media Type",
            416 => "Unsupported URI Scheme",
            420 => "Bad Extension",
            421 => "Extension Required",
            423 => "Interval Too Brief",
            429 => "Provide Referrer Identity",
            480 => "Temporarily Unavailable",
            481 => "Call/Transaction Does Not Exist",
            482 => "Loop Detected",
            483 => "Too Many Hops",
            484 => "Address Incomplete",
            485 => "Ambiguous",
            486 => "Busy Here",
            487 => "Request Terminated",
            488 => "Not Acceptable Here",
            489 => "Bad Event",
            491 => "Request Pending",
            493 => "Undecipherable",
            494 => "Security Agreement Required",
            500 => "Server Internal Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Server Time-out",
            505 => "Version Not Supported",
            513 => "Message Too Large",
            600 => "Busy Everywhere",
            603 => "Decline",
            604 => "Does Not Exist Anywhere",
            606 => "Not Acceptable",
            _ => "Unknown",
        }
    }

    /// Wire form, as for requests.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(head_capacity(&self.headers) + 32 + self.body.len());
        out.extend_from_slice(SIP_VERSION.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.status.to_string().as_bytes());
        out.push(b' ');
        // The reason phrase must not carry a line end either.
        out.extend(
            self.reason
                .bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        out.extend_from_slice(b"\r\n");
        write_headers_and_body(&mut out, &self.headers, &self.body);
        Bytes::from(out)
    }

    pub fn is_final(&self) -> bool {
        self.status >= 200
    }

    pub fn header(&self, name: &HeaderName) -> Option<&str> {
        self.headers.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        let mut r = Request::new(
            Method::Subscribe,
            Uri::parse("sip:bob@example.com").unwrap(),
        );
        r.headers
            .push(HeaderName::Via, "SIP/2.0/UDP a;branch=z9hG4bK1");
        r.headers.push(
            HeaderName::Via,
            "SIP/2.0/TCP b;branch=z9hG4bK2, SIP/2.0/TCP c;branch=z9hG4bK3",
        );
        r.headers
            .push(HeaderName::From, "<sip:alice@example.com>;tag=a");
        r.headers
            .push(HeaderName::To, "\"Bob\" <sip:bob@example.com>");
        r.headers.push(HeaderName::CallId, "cid");
        r.headers.push(HeaderName::CSeq, "7 SUBSCRIBE");
        r.headers.push(HeaderName::Event, "presence");
        r.headers.push(HeaderName::ContentLength, "99");
        r
    }

    #[test]
    fn methods() {
        for m in [
            "REGISTER",
            "INVITE",
            "ACK",
            "CANCEL",
            "BYE",
            "OPTIONS",
            "MESSAGE",
            "SUBSCRIBE",
            "NOTIFY",
            "PUBLISH",
            "INFO",
            "PRACK",
            "UPDATE",
            "REFER",
        ] {
            let parsed = Method::parse(m).unwrap();
            assert!(!matches!(parsed, Method::Extension(_)), "{m}");
            assert_eq!(parsed.as_str(), m);
        }
        // Methods are case-sensitive (RFC 3261 §7.1).
        assert_eq!(
            Method::parse("register"),
            Some(Method::Extension("register".into()))
        );
        assert_eq!(
            Method::parse("RE%47IST%45R"),
            Some(Method::Extension("RE%47IST%45R".into()))
        );
        assert_eq!(Method::parse(""), None);
        assert_eq!(Method::parse("A B"), None);
        assert_eq!(Method::parse("SIP/2.0"), None);
    }

    #[test]
    fn response_for_request() {
        let req = request();
        let mut resp = Response::for_request(&req, 202);
        assert_eq!(resp.reason, "Accepted");
        let names: Vec<_> = resp
            .headers
            .iter()
            .map(|h| h.name.as_str().to_owned())
            .collect();
        assert_eq!(names, ["Via", "Via", "From", "To", "Call-ID", "CSeq"]);
        assert_eq!(resp.headers.vias().unwrap().len(), 3);
        resp.set_to_tag("srv1");
        resp.set_to_tag("srv2");
        assert_eq!(
            resp.header(&HeaderName::To),
            Some("\"Bob\" <sip:bob@example.com>;tag=srv1")
        );
        let wire = String::from_utf8(resp.to_bytes().to_vec()).unwrap();
        assert!(wire.starts_with("SIP/2.0 202 Accepted\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n"));
        assert!(wire.ends_with("CSeq: 7 SUBSCRIBE\r\nContent-Length: 0\r\n\r\n"));
        assert_eq!(Response::for_request(&req, 299).reason, "Unknown");
    }

    #[test]
    fn reason_phrases() {
        for (code, want) in [
            (100, "Trying"),
            (200, "OK"),
            (202, "Accepted"),
            (204, "No Notification"),
            (400, "Bad Request"),
            (412, "Conditional Request Failed"),
            (423, "Interval Too Brief"),
            (429, "Provide Referrer Identity"),
            (481, "Call/Transaction Does Not Exist"),
            (489, "Bad Event"),
            (494, "Security Agreement Required"),
            (505, "Version Not Supported"),
            (513, "Message Too Large"),
            (606, "Not Acceptable"),
        ] {
            assert_eq!(Response::reason_phrase(code), want);
        }
    }

    #[test]
    fn request_wire_form() {
        let mut req = request();
        req.body = Bytes::from_static(b"<x/>");
        req.headers
            .push(HeaderName::parse("X-Evil"), "a\r\nInjected: 1");
        let wire = String::from_utf8(req.to_bytes().to_vec()).unwrap();
        assert!(wire.starts_with("SUBSCRIBE sip:bob@example.com SIP/2.0\r\n"));
        assert_eq!(wire.matches("Content-Length").count(), 1);
        assert!(wire.contains("X-Evil: a  Injected: 1\r\n"));
        assert!(wire.ends_with("Content-Length: 4\r\n\r\n<x/>"));
    }
}
