//! Framing and parsing. RFC 3261 §7.5 (framing over streams with
//! Content-Length), §18.3 (datagrams), RFC 5626 §3.5.1 (CRLF keep-alives).

//!
//! Hand-written rather than rsip's message parser: rsip ignores
//! Content-Length, rejects folding, LF-only lines and extension methods and
//! misses compact forms (STACK.md), and a single pass over the bytes here
//! is several times faster than rsip's nom parser.

use bytes::Bytes;

use crate::error::CodecError;
use crate::grammar::{is_token_byte, is_ws, parse_digits, split_top_level, trim_ws};
use crate::header::{Header, HeaderName, Headers};
use crate::message::{Message, Method, Request, Response};
use crate::typed::{check_name_addr, CSeq, Via};
use crate::uri::Uri;

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
    const PING: &[u8] = b"\r\n\r\n";
    match buf.first() {
        None => return Ok(Frame::Incomplete),
        Some(b'\r') | Some(b'\n') => {
            if buf.starts_with(PING) {
                return Ok(Frame::Ping(PING.len()));
            }
            // A ping may arrive in pieces: wait rather than skip its start.
            if PING.starts_with(buf) {
                return Ok(Frame::Incomplete);
            }
            let n = if buf.starts_with(b"\r\n") { 2 } else { 1 };
            return Ok(Frame::Skip(n));
        }
        Some(_) => {}
    }
    let Some((head_len, body_start)) = find_head_end(buf) else {
        if buf.len() > limits.max_head_size {
            return Err(CodecError::TooLarge {
                size: buf.len(),
                limit: limits.max_head_size,
            });
        }
        return Ok(Frame::Incomplete);
    };
    if head_len > limits.max_head_size {
        return Err(CodecError::TooLarge {
            size: head_len,
            limit: limits.max_head_size,
        });
    }
    let head = buf.get(..head_len).unwrap_or(&[]);
    let cl = stream_content_length(head)?.ok_or(CodecError::MissingHeader("Content-Length"))?;
    if cl > limits.max_body_size {
        return Err(CodecError::BodyTooLarge {
            size: cl,
            limit: limits.max_body_size,
        });
    }
    let total = body_start.saturating_add(cl);
    if total > limits.max_message_size {
        return Err(CodecError::TooLarge {
            size: total,
            limit: limits.max_message_size,
        });
    }
    if buf.len() < total {
        return Ok(Frame::Incomplete);
    }
    Ok(Frame::Message(total))
}

/// Finds the blank line ending the head: returns the head length (up to and
/// including the last header's line end) and the body offset. Accepts CRLF
/// and LF-only line ends, mixed.
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(off) = buf
        .get(i..)
        .and_then(|r| r.iter().position(|&b| b == b'\n'))
    {
        let nl = i + off;
        match (buf.get(nl + 1), buf.get(nl + 2)) {
            (Some(b'\n'), _) => return Some((nl + 1, nl + 2)),
            (Some(b'\r'), Some(b'\n')) => return Some((nl + 1, nl + 3)),
            _ => i = nl + 1,
        }
    }
    None
}

/// Lines of a head, line ends (CRLF or LF) stripped.
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

fn trim_bytes(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if is_ws(*first) {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if is_ws(*last) {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// Reads Content-Length (or `l`) from a head without building headers, so
/// a stream can be framed before the message is parsed. Folded values and
/// repeated equal values are accepted; differing values are an error (the
/// framing would be ambiguous, RFC 4475 mcl01).
fn stream_content_length(head: &[u8]) -> Result<Option<usize>, CodecError> {
    let mut found: Option<usize> = None;
    let mut record = |n: usize| match found {
        Some(prev) if prev != n => Err(CodecError::BadContentLength(
            "several different values".into(),
        )),
        _ => {
            found = Some(n);
            Ok(())
        }
    };
    let mut lines = lines(head).skip(1).peekable();
    while let Some(line) = lines.next() {
        // Only lines starting like "content-length" or "l" can matter.
        if !matches!(line.first(), Some(b'c' | b'C' | b'l' | b'L')) {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim_bytes(line.get(..colon).unwrap_or(&[]));
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let mut value = String::from_utf8_lossy(trim_bytes(line.get(colon + 1..).unwrap_or(&[])));
        // A folded value continues on lines starting with whitespace.
        while let Some(cont) = lines.next_if(|l| l.first().is_some_and(|&b| is_ws(b))) {
            let v = value.to_mut();
            v.push(' ');
            v.push_str(&String::from_utf8_lossy(trim_bytes(cont)));
        }
        record(parse_content_length(&value)?)?;
    }
    Ok(found)
}

/// Content-Length = 1*DIGIT; anything else (RFC 4475 ncl: `-999`) is an
/// error and is never used as a length.
fn parse_content_length(v: &str) -> Result<usize, CodecError> {
    let v = trim_ws(v);
    parse_digits::<usize>(v).ok_or_else(|| {
        let shown: String = v.chars().take(32).collect();
        CodecError::BadContentLength(format!("not a length: {shown:?}"))
    })
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
    if bytes.len() > limits.max_message_size {
        return Err(CodecError::TooLarge {
            size: bytes.len(),
            limit: limits.max_message_size,
        });
    }
    let msg = skip_leading_line_ends(bytes);
    if msg.is_empty() {
        return Err(CodecError::Garbage("no start line".into()));
    }
    // On a datagram the end of the bytes also ends a head that lacks its
    // blank line (RFC 4475 baddn as vendored).
    let (head_len, body_start) = find_head_end(msg).unwrap_or((msg.len(), msg.len()));
    if head_len > limits.max_head_size {
        return Err(CodecError::TooLarge {
            size: head_len,
            limit: limits.max_head_size,
        });
    }
    let head = std::str::from_utf8(msg.get(..head_len).unwrap_or(&[]))
        .map_err(|_| CodecError::Garbage("head is not UTF-8".into()))?;
    let (start_line, rest) = head.split_once('\n').unwrap_or((head, ""));
    let start_line = start_line.strip_suffix('\r').unwrap_or(start_line);
    if start_line.contains('\r') {
        return Err(CodecError::BadStartLine("bare CR".into()));
    }
    let start = parse_start_line(start_line)?;
    let headers = lex_headers(rest, limits.max_headers, true)?;
    let scan = HeaderScan::of(&headers)?;

    let available = msg.get(body_start..).unwrap_or(&[]);
    let body = match scan.content_length {
        Some(cl) => {
            if cl > limits.max_body_size {
                return Err(CodecError::BodyTooLarge {
                    size: cl,
                    limit: limits.max_body_size,
                });
            }
            // RFC 3261 §18.3: fewer bytes than announced is an error (RFC
            // 4475 clerr); bytes past the announced length are dropped
            // (RFC 4475 dblreq).
            available.get(..cl).ok_or_else(|| {
                CodecError::BadContentLength(format!(
                    "announced {cl} bytes, received {}",
                    available.len()
                ))
            })?
        }
        None => available,
    };
    if body.len() > limits.max_body_size {
        return Err(CodecError::BodyTooLarge {
            size: body.len(),
            limit: limits.max_body_size,
        });
    }
    let body = Bytes::copy_from_slice(body);

    match start {
        StartLine::Request(method, uri) => {
            scan.check_request(&headers, &method)?;
            Ok(Message::Request(Request {
                method,
                uri,
                headers,
                body,
            }))
        }
        StartLine::Response(status, reason) => {
            scan.check_response(&headers)?;
            Ok(Message::Response(Response {
                status,
                reason: reason.to_owned(),
                headers,
                body,
            }))
        }
    }
}

/// The answer a server sends for a request that [`parse`] rejected with
/// `err`: the status of [`CodecError::status`], with Via, From, To,
/// Call-ID and CSeq copied from whatever of them could be read (RFC 3261
/// §8.2.6.2; callers add a To tag). `None` when nothing should be sent:
/// the bytes are a response or an ACK (RFC 3261 §17.2.3 never answers
/// those), the error has no status, or no Via says where to send it.
pub fn error_response(bytes: &[u8], err: &CodecError, limits: &Limits) -> Option<Response> {
    let status = err.status()?;
    let msg = skip_leading_line_ends(bytes);
    let (head_len, _) = find_head_end(msg).unwrap_or((msg.len(), msg.len()));
    if head_len > limits.max_head_size {
        return None;
    }
    let head = std::str::from_utf8(msg.get(..head_len)?).ok()?;
    let (start_line, rest) = head.split_once('\n')?;
    let method = start_line.split(' ').next()?;
    match Method::parse(method) {
        None | Some(Method::Ack) => return None,
        Some(_) => {}
    }
    let headers = lex_headers(rest, limits.max_headers, false).ok()?;
    if !headers.contains(&HeaderName::Via) {
        return None;
    }
    let mut resp = Response {
        status,
        reason: Response::reason_phrase(status).to_owned(),
        headers: Headers::new(),
        body: Bytes::new(),
    };
    for v in headers.get_all(&HeaderName::Via) {
        resp.headers.push(HeaderName::Via, v);
    }
    for name in [
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ] {
        if let Some(v) = headers.get(&name) {
            resp.headers.push(name, v);
        }
    }
    Some(resp)
}

/// RFC 3261 §7.5: line ends before the start line are ignored.
fn skip_leading_line_ends(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    bytes.get(n..).unwrap_or(&[])
}

enum StartLine<'a> {
    Request(Method, Uri),
    Response(u16, &'a str),
}

/// Request-Line = Method SP Request-URI SP SIP-Version; Status-Line =
/// SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 §7.1, §7.2).
/// Exactly one SP between elements: extra SP (RFC 4475 lwsstart, trws)
/// and LWS in the URI (lwsruri) are rejected, as the RFC allows.
fn parse_start_line(line: &str) -> Result<StartLine<'_>, CodecError> {
    let bad = || {
        let shown: String = line.chars().take(64).collect();
        CodecError::BadStartLine(shown)
    };
    let (first, rest) = line.split_once(' ').ok_or_else(bad)?;
    if first.contains('/') {
        // A method is a token, which has no `/`: this is a status line.
        check_version(first).map_err(|e| e.unwrap_or_else(bad))?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let status = match code.len() {
            3 => parse_digits::<u16>(code),
            _ => None,
        }
        .filter(|c| (100..=699).contains(c))
        .ok_or_else(bad)?;
        return Ok(StartLine::Response(status, reason));
    }
    let mut parts = rest.split(' ');
    let (Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let method = Method::parse(first).ok_or_else(bad)?;
    check_version(version).map_err(|e| e.unwrap_or_else(bad))?;
    if uri.is_empty() {
        return Err(bad());
    }
    let uri = Uri::parse(uri)?;
    if uri.headers.is_some() {
        // RFC 3261 §19.1.1 table: headers are not allowed in a Request-URI
        // (RFC 4475 escruri).
        return Err(CodecError::InvalidUri("headers in the Request-URI".into()));
    }
    Ok(StartLine::Request(method, uri))
}

/// `Ok` for SIP/2.0 (case-insensitive, RFC 3261 §7.1), `Err(Some(BadVersion))`
/// for another SIP version, `Err(None)` for something else.
fn check_version(v: &str) -> Result<(), Option<CodecError>> {
    if v.eq_ignore_ascii_case(crate::SIP_VERSION) {
        Ok(())
    } else if v.len() > 4 && v.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/")) {
        Err(Some(CodecError::BadVersion(v.chars().take(32).collect())))
    } else {
        Err(None)
    }
}

/// Splits header lines, unfolds continuation lines (RFC 3261 §7.3.1: a
/// line starting with SP or HTAB continues the previous one) and expands
/// compact names. `strict` rejects malformed lines; otherwise they are
/// skipped (used to answer a rejected request).
fn lex_headers(text: &str, max_headers: usize, strict: bool) -> Result<Headers, CodecError> {
    let mut out: Vec<Header> = Vec::with_capacity(16);
    let mut count = 0usize;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        // CR exists only in line ends (RFC 3261 §25.1; quoted-pair excludes it).
        if line.contains('\r') {
            if strict {
                return Err(CodecError::BadHeaderLine);
            }
            continue;
        }
        if line.as_bytes().first().is_some_and(|&b| is_ws(b)) {
            let cont = trim_ws(line);
            match out.last_mut() {
                Some(h) if !cont.is_empty() => {
                    if !h.value.is_empty() {
                        h.value.push(' ');
                    }
                    h.value.push_str(cont);
                }
                Some(_) => {}
                None if strict => return Err(CodecError::BadHeaderLine),
                None => {}
            }
            continue;
        }
        let parsed = line.split_once(':').and_then(|(name, value)| {
            // RFC 4475 wsinv: whitespace may precede the colon.
            let name = name.trim_end_matches([' ', '\t']);
            (!name.is_empty() && name.bytes().all(is_token_byte)).then_some((name, value))
        });
        let Some((name, value)) = parsed else {
            if strict {
                return Err(CodecError::BadHeaderLine);
            }
            continue;
        };
        count += 1;
        if count > max_headers {
            if strict {
                return Err(CodecError::TooManyHeaders { limit: max_headers });
            }
            break;
        }
        out.push(Header {
            name: HeaderName::parse(name),
            value: trim_ws(value).to_owned(),
        });
    }
    Ok(Headers::from_vec(out))
}

/// One pass over the headers collecting what the checks need.
struct HeaderScan {
    content_length: Option<usize>,
    via: usize,
    from: usize,
    to: usize,
    call_id: usize,
    cseq: usize,
    max_forwards: usize,
}

impl HeaderScan {
    fn of(headers: &Headers) -> Result<HeaderScan, CodecError> {
        let mut s = HeaderScan {
            content_length: None,
            via: 0,
            from: 0,
            to: 0,
            call_id: 0,
            cseq: 0,
            max_forwards: 0,
        };
        for h in headers.iter() {
            match h.name {
                HeaderName::Via => s.via += 1,
                HeaderName::From => s.from += 1,
                HeaderName::To => s.to += 1,
                HeaderName::CallId => s.call_id += 1,
                HeaderName::CSeq => s.cseq += 1,
                HeaderName::MaxForwards => s.max_forwards += 1,
                HeaderName::ContentLength => {
                    let n = parse_content_length(&h.value)?;
                    // RFC 4475 mcl01: two different lengths leave the body
                    // undefined.
                    if s.content_length.is_some_and(|prev| prev != n) {
                        return Err(CodecError::BadContentLength(
                            "several different values".into(),
                        ));
                    }
                    s.content_length = Some(n);
                }
                _ => {}
            }
        }
        Ok(s)
    }

    /// Headers both requests and responses need to be matched to a
    /// transaction, each once (RFC 4475 multi01).
    fn check_common(&self, headers: &Headers) -> Result<CSeq, CodecError> {
        if self.via == 0 {
            return Err(CodecError::MissingHeader("Via"));
        }
        if self.cseq == 0 {
            return Err(CodecError::MissingHeader("CSeq"));
        }
        for (count, name) in [
            (self.from, "From"),
            (self.to, "To"),
            (self.call_id, "Call-ID"),
            (self.cseq, "CSeq"),
            (self.max_forwards, "Max-Forwards"),
        ] {
            if count > 1 {
                return Err(CodecError::InvalidHeader {
                    header: name,
                    reason: "appears more than once".into(),
                });
            }
        }
        for line in headers.get_all(&HeaderName::Via) {
            for v in split_top_level(line, b',') {
                Via::parse(v)?;
            }
        }
        headers.cseq()
    }

    /// RFC 3261 §8.1.1 mandatory headers, CSeq method equal to the request
    /// method (§8.2 / RFC 4475 mismatch01), From and To syntax (any scheme).
    fn check_request(&self, headers: &Headers, method: &Method) -> Result<(), CodecError> {
        // RFC 4475 insuf: a request without these cannot be answered
        // sensibly; 400 is the RFC's "ideally".
        if self.from == 0 {
            return Err(CodecError::MissingHeader("From"));
        }
        if self.to == 0 {
            return Err(CodecError::MissingHeader("To"));
        }
        if self.call_id == 0 {
            return Err(CodecError::MissingHeader("Call-ID"));
        }
        let cseq = self.check_common(headers)?;
        if &cseq.method != method {
            return Err(CodecError::InvalidHeader {
                header: "CSeq",
                reason: format!(
                    "method {} differs from request method {}",
                    cseq.method, method
                ),
            });
        }
        headers.call_id()?;
        for (name, header) in [(HeaderName::From, "From"), (HeaderName::To, "To")] {
            if let Some(v) = headers.get(&name) {
                check_name_addr(v).map_err(|r| CodecError::InvalidHeader {
                    header,
                    reason: r.to_owned(),
                })?;
            }
        }
        Ok(())
    }

    fn check_response(&self, headers: &Headers) -> Result<(), CodecError> {
        self.check_common(headers).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &str = "REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.4:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Alice <sip:alice@example.com>\r\n\
From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 REGISTER\r\n\
Contact: <sip:alice@192.0.2.4:5060;transport=tcp>;expires=3600\r\n\
Content-Length: 0\r\n\
\r\n";

    fn lim() -> Limits {
        Limits::default()
    }

    fn req(bytes: &[u8]) -> Request {
        match parse(bytes, &lim()) {
            Ok(Message::Request(r)) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn parse_and_round_trip() {
        let r = req(REGISTER.as_bytes());
        assert_eq!(r.method, Method::Register);
        assert_eq!(r.uri.host, "example.com");
        assert_eq!(r.headers.len(), 8);
        let wire = r.to_bytes();
        assert_eq!(
            &wire[..],
            REGISTER.as_bytes(),
            "canonical input serializes unchanged"
        );
        assert_eq!(req(&wire), r);
    }

    #[test]
    fn compact_folded_lf_only() {
        let raw = "\r\n\r\nMESSAGE sip:bob@example.com SIP/2.0\n\
v: SIP/2.0/UDP [2001:db8::1]:5060\n ;branch=z9hG4bKx\n\
f: <sip:alice@example.com>;tag=1\n\
t: <sip:bob@example.com>\n\
i: abc@host\n\
CSeq: 1\n\tMESSAGE\n\
c: text/plain\n\
l: 5\n\
\n\
hello";
        let r = req(raw.as_bytes());
        assert_eq!(r.method, Method::Message);
        assert_eq!(
            r.headers.get(&HeaderName::Via),
            Some("SIP/2.0/UDP [2001:db8::1]:5060 ;branch=z9hG4bKx")
        );
        assert_eq!(r.headers.cseq().unwrap().seq, 1);
        assert_eq!(&r.body[..], b"hello");
        let wire = String::from_utf8(r.to_bytes().to_vec()).unwrap();
        assert!(wire.contains("\r\nVia: SIP/2.0/UDP [2001:db8::1]:5060 ;branch=z9hG4bKx\r\n"));
        assert!(wire.contains("\r\nCall-ID: abc@host\r\n"));
        assert!(wire.contains("\r\nContent-Type: text/plain\r\n"));
        assert!(wire.ends_with("\r\nContent-Length: 5\r\n\r\nhello"));
        assert!(!wire.contains('\n') || wire.matches('\n').count() == wire.matches("\r\n").count());
    }

    #[test]
    fn content_length_recomputed_on_serialize() {
        let mut r = req(REGISTER.as_bytes());
        r.body = Bytes::from_static(b"0123456789");
        let wire = r.to_bytes();
        let s = std::str::from_utf8(&wire).unwrap();
        assert_eq!(s.matches("Content-Length").count(), 1);
        assert!(s.ends_with("Content-Length: 10\r\n\r\n0123456789"));
    }

    #[test]
    fn extension_method_and_checks() {
        let raw = REGISTER.replace("REGISTER", "FOO");
        assert_eq!(req(raw.as_bytes()).method, Method::Extension("FOO".into()));
        let mismatch = REGISTER.replace("CSeq: 314159 REGISTER", "CSeq: 1 INVITE");
        assert!(matches!(
            parse(mismatch.as_bytes(), &lim()),
            Err(CodecError::InvalidHeader { header: "CSeq", .. })
        ));
        for (h, name) in [
            (
                "Via: SIP/2.0/TCP 192.0.2.4:5060;branch=z9hG4bK776asdhds;rport\r\n",
                "Via",
            ),
            ("To: Alice <sip:alice@example.com>\r\n", "To"),
            (
                "From: Alice <sip:alice@example.com>;tag=1928301774\r\n",
                "From",
            ),
            ("Call-ID: a84b4c76e66710@pc33.example.com\r\n", "Call-ID"),
            ("CSeq: 314159 REGISTER\r\n", "CSeq"),
        ] {
            let raw = REGISTER.replace(h, "");
            assert_eq!(
                parse(raw.as_bytes(), &lim()),
                Err(CodecError::MissingHeader(name))
            );
        }
        // Max-Forwards is optional on receipt.
        req(REGISTER.replace("Max-Forwards: 70\r\n", "").as_bytes());
    }

    #[test]
    fn start_line_errors() {
        let v = REGISTER.replace("example.com SIP/2.0", "example.com SIP/3.0");
        let e = parse(v.as_bytes(), &lim()).unwrap_err();
        assert!(matches!(e, CodecError::BadVersion(_)));
        assert_eq!(e.status(), Some(505));
        let s = REGISTER.replace("sip:example.com SIP", "http://example.com SIP");
        let e = parse(s.as_bytes(), &lim()).unwrap_err();
        assert!(matches!(e, CodecError::UnsupportedScheme(_)));
        assert_eq!(e.status(), Some(416));
        req(REGISTER
            .replace("sip:example.com SIP", "tel:+15551234 SIP")
            .as_bytes());
        req(REGISTER
            .replace("sip:example.com SIP", "sips:example.com SIP")
            .as_bytes());
        for bad in [
            "garbage\r\n\r\n",
            "REGISTER\r\n\r\n",
            "SIP/2.0 20 OK\r\n\r\n",
            "\u{0}\r\n\r\n",
        ] {
            assert!(parse(bad.as_bytes(), &lim()).is_err(), "{bad:?}");
        }
        assert!(matches!(
            parse(b"\r\n\r\n", &lim()),
            Err(CodecError::Garbage(_))
        ));
        assert!(matches!(
            parse(b"\xff\xfe\r\n\r\n", &lim()),
            Err(CodecError::Garbage(_))
        ));
    }

    #[test]
    fn responses() {
        let raw =
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
To: <sip:a@b>;tag=2\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
        let Ok(Message::Response(r)) = parse(raw.as_bytes(), &lim()) else {
            panic!("response expected");
        };
        assert_eq!(r.status, 200);
        assert_eq!(r.reason, "OK");
        assert!(r.is_final());
        assert_eq!(&r.to_bytes()[..], raw.as_bytes());
        let no_reason = raw.replace("200 OK", "100 ");
        let Ok(Message::Response(r)) = parse(no_reason.as_bytes(), &lim()) else {
            panic!("response expected");
        };
        assert_eq!((r.status, r.reason.as_str()), (100, ""));
        assert!(parse(raw.replace("200 OK", "4294967301 big").as_bytes(), &lim()).is_err());
    }

    #[test]
    fn datagram_content_length_rules() {
        // Longer than announced: trailing bytes dropped.
        let raw = REGISTER.replace("Content-Length: 0", "Content-Length: 3") + "abcdef";
        assert_eq!(&req(raw.as_bytes()).body[..], b"abc");
        // Shorter than announced: error.
        let raw = REGISTER.replace("Content-Length: 0", "Content-Length: 30") + "abc";
        assert!(matches!(
            parse(raw.as_bytes(), &lim()),
            Err(CodecError::BadContentLength(_))
        ));
        // Absent: body runs to the end.
        let raw = REGISTER.replace("Content-Length: 0\r\n", "") + "xyz";
        assert_eq!(&req(raw.as_bytes()).body[..], b"xyz");
        // Negative, and two different values.
        let raw = REGISTER.replace("Content-Length: 0", "Content-Length: -1");
        assert!(matches!(
            parse(raw.as_bytes(), &lim()),
            Err(CodecError::BadContentLength(_))
        ));
        let raw = REGISTER.replace("Content-Length: 0", "Content-Length: 0\r\nl: 2");
        assert!(matches!(
            parse(raw.as_bytes(), &lim()),
            Err(CodecError::BadContentLength(_))
        ));
    }

    #[test]
    fn limits() {
        let small = Limits {
            max_message_size: 1000,
            max_head_size: 200,
            max_headers: 5,
            max_body_size: 10,
        };
        let e = parse(REGISTER.as_bytes(), &small).unwrap_err();
        assert!(
            matches!(e, CodecError::TooLarge { limit: 200, .. }),
            "{e:?}"
        );
        assert_eq!(e.status(), Some(413));
        let roomy_head = Limits {
            max_head_size: 1000,
            max_message_size: 1000,
            ..small.clone()
        };
        assert_eq!(
            parse(REGISTER.as_bytes(), &roomy_head),
            Err(CodecError::TooManyHeaders { limit: 5 })
        );
        let body_lim = Limits {
            max_headers: 50,
            ..roomy_head.clone()
        };
        let raw = REGISTER.replace("Content-Length: 0", "Content-Length: 11") + "01234567890";
        let e = parse(raw.as_bytes(), &body_lim).unwrap_err();
        assert_eq!(
            e,
            CodecError::BodyTooLarge {
                size: 11,
                limit: 10
            }
        );
        assert_eq!(e.status(), Some(413));
        let huge = vec![b'x'; 2000];
        assert!(matches!(
            parse(&huge, &small),
            Err(CodecError::TooLarge { limit: 1000, .. })
        ));
        assert!(matches!(
            parse(&huge, &body_lim),
            Err(CodecError::TooLarge { size: 2000, .. })
        ));
        // Streams: the same limits.
        assert!(matches!(
            frame_stream(raw.as_bytes(), &body_lim),
            Err(CodecError::BodyTooLarge { .. })
        ));
        assert!(matches!(
            frame_stream(&huge, &body_lim),
            Err(CodecError::TooLarge { .. })
        ));
        let mut long_head = REGISTER.trim_end_matches("\r\n\r\n").to_owned();
        long_head.push_str(&"\r\nX-Pad: 0123456789".repeat(60));
        assert!(matches!(
            frame_stream(long_head.as_bytes(), &body_lim),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn stream_framing_pipelined_and_partial() {
        let msg2 = REGISTER.replace("Content-Length: 0", "l: 4") + "body";
        let mut stream = Vec::new();
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(REGISTER.as_bytes());
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(msg2.as_bytes());
        stream.extend_from_slice(b"\r\n\r\n");

        let mut frames = Vec::new();
        let mut buf = &stream[..];
        loop {
            match frame_stream(buf, &lim()).unwrap() {
                Frame::Incomplete => break,
                f @ (Frame::Ping(n) | Frame::Skip(n) | Frame::Message(n)) => {
                    if let Frame::Message(_) = f {
                        parse(&buf[..n], &lim()).unwrap();
                    }
                    frames.push(f);
                    buf = &buf[n..];
                }
            }
        }
        assert_eq!(
            frames,
            vec![
                Frame::Ping(4),
                Frame::Message(REGISTER.len()),
                Frame::Skip(2),
                Frame::Message(msg2.len()),
                Frame::Ping(4),
            ]
        );
        assert!(buf.is_empty());

        // Every strict prefix of a message is Incomplete.
        for cut in 0..msg2.len() {
            assert_eq!(
                frame_stream(&msg2.as_bytes()[..cut], &lim()),
                Ok(Frame::Incomplete),
                "cut {cut}"
            );
        }
        assert_eq!(frame_stream(b"\r\n", &lim()), Ok(Frame::Incomplete));
        assert_eq!(frame_stream(b"\r\n\r", &lim()), Ok(Frame::Incomplete));
        assert_eq!(frame_stream(b"\r\nR", &lim()), Ok(Frame::Skip(2)));
    }

    #[test]
    fn stream_framing_errors() {
        let no_cl = REGISTER.replace("Content-Length: 0\r\n", "");
        assert_eq!(
            frame_stream(no_cl.as_bytes(), &lim()),
            Err(CodecError::MissingHeader("Content-Length"))
        );
        let neg = REGISTER.replace("Content-Length: 0", "Content-Length: -999");
        assert!(matches!(
            frame_stream(neg.as_bytes(), &lim()),
            Err(CodecError::BadContentLength(_))
        ));
        let two = REGISTER.replace("Content-Length: 0", "Content-Length: 13\r\nl: 5");
        assert!(matches!(
            frame_stream(two.as_bytes(), &lim()),
            Err(CodecError::BadContentLength(_))
        ));
        let folded = REGISTER.replace("Content-Length: 0", "Content-Length:\r\n 2") + "ok";
        assert_eq!(
            frame_stream(folded.as_bytes(), &lim()),
            Ok(Frame::Message(folded.len()))
        );
    }

    #[test]
    fn error_response_for_rejected_request() {
        let raw = REGISTER.replace("sip:example.com SIP", "nobodyKnowsThisScheme:x SIP");
        let err = parse(raw.as_bytes(), &lim()).unwrap_err();
        let resp = error_response(raw.as_bytes(), &err, &lim()).unwrap();
        assert_eq!(resp.status, 416);
        assert_eq!(resp.reason, "Unsupported URI Scheme");
        assert_eq!(
            resp.headers.call_id().unwrap(),
            "a84b4c76e66710@pc33.example.com"
        );
        assert_eq!(
            resp.headers.top_via().unwrap().branch(),
            Some("z9hG4bK776asdhds")
        );
        // No answer to responses, to ACK, or without a Via.
        let ack = raw.replace("REGISTER", "ACK");
        assert!(error_response(ack.as_bytes(), &err, &lim()).is_none());
        assert!(error_response(b"SIP/2.0 200 OK\r\n\r\n", &err, &lim()).is_none());
        let no_via = raw.replace(
            "Via: SIP/2.0/TCP 192.0.2.4:5060;branch=z9hG4bK776asdhds;rport\r\n",
            "",
        );
        assert!(error_response(no_via.as_bytes(), &err, &lim()).is_none());
        assert!(error_response(raw.as_bytes(), &CodecError::Garbage("x".into()), &lim()).is_none());
    }

    #[test]
    fn never_panics_on_prefixes_and_mutations() {
        let base = REGISTER.as_bytes();
        for cut in 0..base.len() {
            let _ = parse(&base[..cut], &lim());
            let _ = frame_stream(&base[..cut], &lim());
        }
        for i in 0..base.len() {
            for b in [
                0u8, b'\r', b'\n', b'"', b'<', b'%', b':', b';', b',', 0xff, 0xc3,
            ] {
                let mut m = base.to_vec();
                m[i] = b;
                if let Ok(msg) = parse(&m, &lim()) {
                    let _ = msg.to_bytes();
                    let h = msg.headers();
                    let _ = (
                        h.vias(),
                        h.contacts(),
                        h.from_addr(),
                        h.to_addr(),
                        h.expires(),
                    );
                } else if let Err(e) = parse(&m, &lim()) {
                    let _ = error_response(&m, &e, &lim());
                }
                let _ = frame_stream(&m, &lim());
            }
        }
    }
}
