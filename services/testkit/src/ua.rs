//! Scripted SIP user agents over real sockets.
//!
//! A [`Ua`] is one user (`alice@example.com`) on one socket: UDP bound to
//! 127.0.0.1:0 or a TCP connection to the server. It builds requests with
//! a fresh branch, Call-ID and tag and a Via naming its own address and
//! transport; it sends them (or any raw bytes) to the server; it reads what
//! comes back, keeping whatever the test has not asked for yet in an inbox
//! in arrival order; and it answers requests delivered to it the way a UAS
//! transaction does: a retransmitted request (same branch and method) is
//! absorbed and the response it got is sent again, so "delivered once"
//! means one transaction however many datagrams carried it.
//!
//! An agent reads its socket only while the test asks it for something
//! (`recv*`, `transact`, `expect_nothing`): in between, what arrives waits
//! in the kernel's buffer, and so do the agent's automatic answers to
//! retransmissions.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use sip::{
    Contact, ContactList, Frame, HeaderName, Limits, Message, Method, Request, Response, Uri, Via,
};

use crate::tls::ReadWrite;
use crate::{escape_bytes, fresh_branch, random_hex};

/// The domain test users live in (Herald's open default serves any).
pub const DEFAULT_DOMAIN: &str = "example.com";

/// How long the convenience round trips (`transact`, `register`) wait.
const ROUND_TRIP: Duration = Duration::from_secs(5);

/// What a received message was, as bytes and parsed, and where it came from.
#[derive(Debug, Clone)]
pub struct Received {
    pub message: Message,
    pub raw: Bytes,
    pub from: SocketAddr,
}

impl Received {
    pub fn request(&self) -> Option<&Request> {
        match &self.message {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }
    pub fn response(&self) -> Option<&Response> {
        match &self.message {
            Message::Response(r) => Some(r),
            Message::Request(_) => None,
        }
    }
    fn summary(&self) -> String {
        let first = self
            .raw
            .split(|b| *b == b'\n')
            .next()
            .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
            .unwrap_or_default();
        let call_id = self
            .message
            .headers()
            .get(&HeaderName::CallId)
            .unwrap_or("-");
        format!("{first} (Call-ID {call_id}, from {})", self.from)
    }
}

/// The socket a [`Ua`] talks through.
pub trait Transport {
    /// The Via transport token (`UDP`, `TCP`).
    fn via_transport(&self) -> &'static str;
    /// The URI parameter a Contact carries for this transport, if any.
    fn contact_param(&self) -> Option<&'static str>;
    fn local_addr(&self) -> SocketAddr;
    /// Sends bytes to the server (UDP: a datagram to its address; TCP: on
    /// the connection).
    fn send_to_server(&mut self, bytes: &[u8]) -> Result<()>;
    /// Sends a response to a request whose top Via is `via` (UDP: to the
    /// Via's sent-by, RFC 3261 §18.2.2; TCP: on the connection).
    fn send_response(&mut self, via: Option<&Via>, bytes: &[u8]) -> Result<()>;
    /// The next whole message and its source, or `None` at the deadline.
    fn recv_bytes(&mut self, deadline: Instant) -> Result<Option<(Bytes, SocketAddr)>>;
}

/// A UDP socket on 127.0.0.1:0 that sends to one server address.
pub struct Udp {
    socket: UdpSocket,
    local: SocketAddr,
    server: SocketAddr,
    buf: Vec<u8>,
}

/// A TCP or TLS connection to the server, framed with `sip::frame_stream`.
pub struct Tcp {
    stream: Box<dyn ReadWrite>,
    /// The socket under `stream` (a second handle): timeouts, shutdown.
    socket: TcpStream,
    tls: bool,
    /// DER of the certificate a TLS server presented.
    peer_certificate: Option<Vec<u8>>,
    local: SocketAddr,
    peer: SocketAddr,
    buf: Vec<u8>,
    closed: bool,
}

pub type UdpUa = Ua<Udp>;
pub type TcpUa = Ua<Tcp>;
/// A TLS agent: the same connection agent as [`TcpUa`], over TLS.
pub type TlsUa = Ua<Tcp>;
/// A WebSocket agent (WS or WSS, RFC 7118).
pub type WsUa = Ua<crate::ws::Ws>;

pub(crate) fn read_timeout(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        None
    } else {
        Some(left.max(Duration::from_millis(1)))
    }
}

pub(crate) fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

impl Transport for Udp {
    fn via_transport(&self) -> &'static str {
        "UDP"
    }
    fn contact_param(&self) -> Option<&'static str> {
        None
    }
    fn local_addr(&self) -> SocketAddr {
        self.local
    }
    fn send_to_server(&mut self, bytes: &[u8]) -> Result<()> {
        let n = self
            .socket
            .send_to(bytes, self.server)
            .with_context(|| format!("UDP send to {}", self.server))?;
        if n != bytes.len() {
            bail!("UDP send truncated: {n} of {} bytes", bytes.len());
        }
        Ok(())
    }
    fn send_response(&mut self, via: Option<&Via>, bytes: &[u8]) -> Result<()> {
        // RFC 3261 §18.2.2 / RFC 3581: received + rport when present,
        // else sent-by (port 5060 when absent). A sent-by that is not an
        // IP literal cannot be resolved here: answer the server.
        let to = via
            .and_then(|v| {
                let host = v
                    .param("received")
                    .flatten()
                    .unwrap_or(v.host.as_str())
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let ip: IpAddr = host.parse().ok()?;
                let port = v
                    .param("rport")
                    .flatten()
                    .and_then(|p| p.parse().ok())
                    .or(v.port)
                    .unwrap_or(5060);
                Some(SocketAddr::new(ip, port))
            })
            .unwrap_or(self.server);
        self.socket
            .send_to(bytes, to)
            .with_context(|| format!("UDP send to {to}"))?;
        Ok(())
    }
    fn recv_bytes(&mut self, deadline: Instant) -> Result<Option<(Bytes, SocketAddr)>> {
        let Some(t) = read_timeout(deadline) else {
            return Ok(None);
        };
        self.socket.set_read_timeout(Some(t))?;
        match self.socket.recv_from(&mut self.buf) {
            Ok((n, from)) => Ok(Some((Bytes::copy_from_slice(&self.buf[..n]), from))),
            Err(e) if is_timeout(&e) => Ok(None),
            Err(e) => Err(e).context("UDP recv"),
        }
    }
}

impl Transport for Tcp {
    fn via_transport(&self) -> &'static str {
        if self.tls {
            "TLS"
        } else {
            "TCP"
        }
    }
    fn contact_param(&self) -> Option<&'static str> {
        if self.tls {
            Some("transport=tls")
        } else {
            Some("transport=tcp")
        }
    }
    fn local_addr(&self) -> SocketAddr {
        self.local
    }
    fn send_to_server(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .write_all(bytes)
            .with_context(|| format!("TCP send to {}", self.peer))
    }
    fn send_response(&mut self, _via: Option<&Via>, bytes: &[u8]) -> Result<()> {
        self.send_to_server(bytes)
    }
    fn recv_bytes(&mut self, deadline: Instant) -> Result<Option<(Bytes, SocketAddr)>> {
        let limits = receive_limits();
        loop {
            if !self.buf.is_empty() {
                match sip::frame_stream(&self.buf, &limits) {
                    Ok(Frame::Message(n)) => {
                        let msg: Vec<u8> = self.buf.drain(..n).collect();
                        return Ok(Some((Bytes::from(msg), self.peer)));
                    }
                    Ok(Frame::Ping(n)) => {
                        self.buf.drain(..n);
                        self.stream.write_all(b"\r\n")?;
                        continue;
                    }
                    Ok(Frame::Skip(n)) => {
                        self.buf.drain(..n);
                        continue;
                    }
                    Ok(Frame::Incomplete) => {}
                    Err(e) => bail!(
                        "cannot frame what the server sent on TCP: {e}\n{}",
                        escape_bytes(&self.buf)
                    ),
                }
            }
            if self.closed {
                if self.buf.is_empty() {
                    bail!("TCP connection closed by {}", self.peer);
                }
                bail!(
                    "TCP connection closed by {} inside a message:\n{}",
                    self.peer,
                    escape_bytes(&self.buf)
                );
            }
            let Some(t) = read_timeout(deadline) else {
                return Ok(None);
            };
            self.socket.set_read_timeout(Some(t))?;
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) => return Ok(None),
                // A TLS peer that closes without close_notify.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
                    ) =>
                {
                    self.closed = true
                }
                Err(e) => return Err(e).context("TCP recv"),
            }
        }
    }
}

/// Limits for what the test agents accept: generous, so a test of large
/// bodies is not stopped by its own agent.
fn receive_limits() -> Limits {
    Limits {
        max_message_size: 1 << 20,
        max_head_size: 64 * 1024,
        max_headers: 1024,
        max_body_size: 1 << 20,
    }
}

/// A scripted user agent. See the module documentation.
pub struct Ua<T: Transport> {
    transport: T,
    server: SocketAddr,
    user: String,
    domain: String,
    tag: String,
    reg_call_id: String,
    cseq: u32,
    inbox: VecDeque<Received>,
    /// Requests seen, by transaction key: `Some(response bytes)` once answered.
    transactions: HashMap<String, Option<Bytes>>,
    absorbed: usize,
}

impl Ua<Udp> {
    /// A UDP agent for `user@example.com` on 127.0.0.1:0, sending to `server`.
    pub fn bind(user: &str, server: SocketAddr) -> Result<UdpUa> {
        Self::bind_at(user, SocketAddr::from(([127, 0, 0, 1], 0)), server)
    }

    /// A UDP agent on a given local address (for example the port a SIPp
    /// UAS will take once this agent has registered it and is dropped).
    pub fn bind_at(user: &str, local: SocketAddr, server: SocketAddr) -> Result<UdpUa> {
        let socket = UdpSocket::bind(local).with_context(|| format!("binding UDP {local}"))?;
        let local = socket.local_addr()?;
        Ok(Ua::new(
            Udp {
                socket,
                local,
                server,
                buf: vec![0; 65_536],
            },
            user,
            server,
        ))
    }

    /// The socket, for tests that need to send from it directly.
    pub fn socket(&self) -> &UdpSocket {
        &self.transport.socket
    }

    /// Sends from now on to `server`, keeping the socket, the dialogs'
    /// tags and the inbox: a client whose proxy went away and that turns
    /// to another one (another edge of the cluster).
    pub fn set_server(&mut self, server: SocketAddr) {
        self.transport.server = server;
        self.server = server;
    }
}

impl Ua<Tcp> {
    /// A TCP agent for `user@example.com`, connected to `server`.
    pub fn connect(user: &str, server: SocketAddr) -> Result<TcpUa> {
        let stream = TcpStream::connect_timeout(&server, Duration::from_secs(5))
            .with_context(|| format!("TCP connect to {server}"))?;
        stream.set_nodelay(true)?;
        let local = stream.local_addr()?;
        Ok(Ua::new(
            Tcp {
                socket: stream.try_clone()?,
                stream: Box::new(stream),
                tls: false,
                peer_certificate: None,
                local,
                peer: server,
                buf: Vec::new(),
                closed: false,
            },
            user,
            server,
        ))
    }

    /// A TLS agent for `user@example.com`, connected to `server` and
    /// trusting only the test CA of `tls`.
    pub fn connect_tls(user: &str, server: SocketAddr, tls: &crate::TestTls) -> Result<TlsUa> {
        let conn = tls.connect(server)?;
        let local = conn.socket.local_addr()?;
        Ok(Ua::new(
            Tcp {
                socket: conn.socket,
                stream: Box::new(conn.stream),
                tls: true,
                peer_certificate: Some(conn.peer_certificate),
                local,
                peer: server,
                buf: Vec::new(),
                closed: false,
            },
            user,
            server,
        ))
    }

    /// DER of the certificate the server presented (TLS agents only).
    pub fn peer_certificate(&self) -> Option<&[u8]> {
        self.transport.peer_certificate.as_deref()
    }

    /// Waits (at most `within`) for the server to close the connection.
    /// Messages that arrive before the close are kept in the inbox.
    pub fn expect_closed(&mut self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if self.transport.closed && self.transport.buf.is_empty() {
                return Ok(());
            }
            match self.transport.recv_bytes(deadline) {
                Ok(Some((raw, from))) => {
                    if let Ok(r) = self.parse_received(raw, from) {
                        self.inbox.push_back(r);
                    }
                }
                Ok(None) => bail!("the server kept the TCP connection open for {within:?}"),
                // Closed, possibly inside a message: that is a close.
                Err(_) if self.transport.closed => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Closes the connection.
    pub fn close(&mut self) {
        let _ = self.transport.socket.shutdown(Shutdown::Both);
    }
}

impl<T: Transport> Ua<T> {
    pub(crate) fn new(transport: T, user: &str, server: SocketAddr) -> Ua<T> {
        Ua {
            transport,
            server,
            user: user.to_string(),
            domain: DEFAULT_DOMAIN.to_string(),
            tag: random_hex(10),
            reg_call_id: format!("reg-{}@testkit", random_hex(16)),
            cseq: 0,
            inbox: VecDeque::new(),
            transactions: HashMap::new(),
            absorbed: 0,
        }
    }

    pub(crate) fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Uses another domain for this agent's AOR.
    pub fn with_domain(mut self, domain: &str) -> Self {
        self.domain = domain.to_string();
        self
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `sip:user@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    /// The server this agent sends to.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// `sip:user@127.0.0.1:port` (`;transport=tcp` on TCP): where this
    /// agent can be reached.
    pub fn contact_uri(&self) -> String {
        match self.transport.contact_param() {
            Some(p) => format!("sip:{}@{};{p}", self.user, self.local_addr()),
            None => format!("sip:{}@{}", self.user, self.local_addr()),
        }
    }

    /// A Via value with this agent's address and transport and `branch`.
    pub fn via(&self, branch: &str) -> String {
        let rport = if self.transport.via_transport() == "UDP" {
            ";rport"
        } else {
            ""
        };
        format!(
            "SIP/2.0/{} {};branch={branch}{rport}",
            self.transport.via_transport(),
            self.local_addr()
        )
    }

    /// How many retransmitted requests were absorbed (answered again or
    /// dropped as duplicates) instead of reaching the inbox.
    pub fn absorbed_retransmissions(&self) -> usize {
        self.absorbed
    }

    pub(crate) fn next_cseq(&mut self) -> u32 {
        self.cseq += 1;
        self.cseq
    }

    // ---- building requests -------------------------------------------

    /// A request with everything RFC 3261 §8.1.1 asks for: Via (fresh
    /// branch), Max-Forwards 70, From (this agent, its tag), To, a fresh
    /// Call-ID, CSeq.
    pub fn request(&mut self, method: Method, request_uri: &str, to: &str) -> Request {
        let uri = parse_uri(request_uri);
        let mut req = Request::new(method.clone(), uri);
        let cseq = self.next_cseq();
        let h = &mut req.headers;
        h.push(HeaderName::Via, self.via(&fresh_branch()));
        h.push(HeaderName::MaxForwards, "70");
        h.push(
            HeaderName::From,
            format!("<{}>;tag={}", self.aor(), self.tag),
        );
        h.push(HeaderName::To, format!("<{to}>"));
        h.push(HeaderName::CallId, format!("{}@testkit", random_hex(20)));
        h.push(HeaderName::CSeq, format!("{cseq} {method}"));
        h.push(HeaderName::UserAgent, "herald-testkit");
        req
    }

    /// REGISTER for this agent's AOR with its own Contact; `expires` goes
    /// in an Expires header when given. Refreshes share one Call-ID with
    /// increasing CSeq (RFC 3261 §10.2.4).
    pub fn register_request(&mut self, expires: Option<u32>) -> Request {
        let mut req = self.fetch_bindings_request();
        req.headers
            .push(HeaderName::Contact, format!("<{}>", self.contact_uri()));
        if let Some(e) = expires {
            req.headers.push(HeaderName::Expires, e.to_string());
        }
        req
    }

    /// REGISTER with no Contact: asks for the current bindings (§10.2.3).
    pub fn fetch_bindings_request(&mut self) -> Request {
        let aor = self.aor();
        let mut req = self.request(Method::Register, &format!("sip:{}", self.domain), &aor);
        req.headers
            .set(HeaderName::CallId, self.reg_call_id.clone());
        req
    }

    /// MESSAGE to `to` (an AOR such as `sip:bob@example.com`) with a body.
    pub fn message_request(&mut self, to: &str, content_type: &str, body: &str) -> Request {
        self.message_request_bytes(to, content_type, body.as_bytes())
    }

    /// MESSAGE with a body of any bytes.
    pub fn message_request_bytes(&mut self, to: &str, content_type: &str, body: &[u8]) -> Request {
        let mut req = self.request(Method::Message, to, to);
        req.headers.push(HeaderName::ContentType, content_type);
        req.body = Bytes::copy_from_slice(body);
        req
    }

    /// OPTIONS addressed to the server itself.
    pub fn options_request(&mut self) -> Request {
        let target = format!("sip:{}", self.server);
        self.request(Method::Options, &target, &target)
    }

    /// The same request as text lines a test can break on purpose: the
    /// standard headers of [`Ua::request`], no Content-Length (added at
    /// [`RawRequest::to_bytes`] unless the test wrote one).
    pub fn raw_request(&mut self, method: &str, request_uri: &str, to: &str) -> RawRequest {
        let branch = fresh_branch();
        let cseq = self.next_cseq();
        RawRequest {
            start_line: format!("{method} {request_uri} SIP/2.0"),
            headers: vec![
                format!("Via: {}", self.via(&branch)),
                "Max-Forwards: 70".to_string(),
                format!("From: <{}>;tag={}", self.aor(), self.tag),
                format!("To: <{to}>"),
                format!("Call-ID: {}@testkit", random_hex(20)),
                format!("CSeq: {cseq} {method}"),
            ],
            body: Vec::new(),
            branch,
        }
    }

    // ---- sending -----------------------------------------------------

    pub fn send(&mut self, req: &Request) -> Result<()> {
        self.send_raw(&req.to_bytes())
    }

    /// Sends bytes exactly as given.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.transport.send_to_server(bytes)
    }

    /// Sends `req` and waits for its final response.
    pub fn transact(&mut self, req: &Request) -> Result<Response> {
        self.send(req)?;
        self.recv_response(req, ROUND_TRIP)
    }

    /// Sends `req` and waits at most `within` for its final response.
    pub fn transact_within(&mut self, req: &Request, within: Duration) -> Result<Response> {
        self.send(req)?;
        self.recv_response(req, within)
    }

    /// REGISTER with `Expires: expires`; returns the final response.
    pub fn register(&mut self, expires: u32) -> Result<Response> {
        let req = self.register_request(Some(expires));
        self.transact(&req)
    }

    /// REGISTER with no Contact; returns the final response.
    pub fn fetch_bindings(&mut self) -> Result<Response> {
        let req = self.fetch_bindings_request();
        self.transact(&req)
    }

    /// OPTIONS to the server; returns the final response.
    pub fn options(&mut self) -> Result<Response> {
        let req = self.options_request();
        self.transact(&req)
    }

    // ---- receiving ---------------------------------------------------

    /// The next message (inbox first), at most `within` from now.
    pub fn recv(&mut self, within: Duration) -> Result<Message> {
        Ok(self.recv_received(within)?.message)
    }

    /// The next message with its bytes and source.
    pub fn recv_received(&mut self, within: Duration) -> Result<Received> {
        self.next_where(within, "any message", |_| true)
    }

    /// The first message `pred` accepts; others stay in the inbox.
    pub fn next_where(
        &mut self,
        within: Duration,
        what: &str,
        pred: impl FnMut(&Received) -> bool,
    ) -> Result<Received> {
        match self.try_next_where(within, pred)? {
            Some(r) => Ok(r),
            None => {
                let pending: Vec<String> = self.inbox.iter().map(Received::summary).collect();
                bail!(
                    "{} ({}) waited {within:?} for {what}; not taken: {pending:#?}",
                    self.aor(),
                    self.local_addr()
                );
            }
        }
    }

    /// As [`Ua::next_where`], with `None` when nothing matched within
    /// `within` (for agents polled in a loop).
    pub fn try_next_where(
        &mut self,
        within: Duration,
        mut pred: impl FnMut(&Received) -> bool,
    ) -> Result<Option<Received>> {
        if let Some(i) = self.inbox.iter().position(&mut pred) {
            return Ok(self.inbox.remove(i));
        }
        let deadline = Instant::now() + within;
        loop {
            let Some(r) = self.read_one(deadline)? else {
                return Ok(None);
            };
            if pred(&r) {
                return Ok(Some(r));
            }
            self.inbox.push_back(r);
        }
    }

    /// The final response to `req` (same top-Via branch and CSeq);
    /// provisional responses are skipped.
    pub fn recv_response(&mut self, req: &Request, within: Duration) -> Result<Response> {
        let branch = top_branch(req).context("the request has no Via branch to match")?;
        let cseq = req
            .headers
            .get(&HeaderName::CSeq)
            .unwrap_or_default()
            .to_string();
        self.recv_response_to(&branch, &cseq, within)
    }

    /// The final response whose top Via has `branch` (and CSeq `cseq`
    /// unless empty): for requests sent as raw bytes.
    pub fn recv_response_to(
        &mut self,
        branch: &str,
        cseq: &str,
        within: Duration,
    ) -> Result<Response> {
        let what = format!("a final response to branch {branch}");
        let r = self.next_where(within, &what, |r| match r.response() {
            Some(resp) => {
                resp.is_final()
                    && top_branch_of(&resp.headers).as_deref() == Some(branch)
                    && (cseq.is_empty()
                        || same_cseq(resp.headers.get(&HeaderName::CSeq).unwrap_or(""), cseq))
            }
            None => false,
        })?;
        Ok(r.response().cloned().expect("matched a response"))
    }

    /// The next final response whatever it answers.
    pub fn recv_final_response(&mut self, within: Duration) -> Result<Response> {
        let r = self.next_where(within, "a final response", |r| {
            r.response().is_some_and(Response::is_final)
        })?;
        Ok(r.response().cloned().expect("matched a response"))
    }

    /// The first request `pred` accepts.
    pub fn recv_request_matching(
        &mut self,
        within: Duration,
        what: &str,
        mut pred: impl FnMut(&Request) -> bool,
    ) -> Result<Request> {
        let r = self.next_where(within, what, |r| r.request().is_some_and(&mut pred))?;
        Ok(r.request().cloned().expect("matched a request"))
    }

    /// The next request with this method.
    pub fn recv_request(&mut self, method: &Method, within: Duration) -> Result<Request> {
        let what = format!("a {method} request");
        self.recv_request_matching(within, &what, |r| &r.method == method)
    }

    /// Fails if anything is in the inbox or arrives within `within`
    /// (absorbed retransmissions do not count). Use it to check that
    /// something did NOT happen; `within` is how long "not" means.
    pub fn expect_nothing(&mut self, within: Duration) -> Result<()> {
        if let Some(r) = self.inbox.front() {
            bail!("{} has an unexpected message: {}", self.aor(), r.summary());
        }
        let deadline = Instant::now() + within;
        if let Some(r) = self.read_one(deadline)? {
            bail!(
                "{} received an unexpected message: {}\n{}",
                self.aor(),
                r.summary(),
                escape_bytes(&r.raw)
            );
        }
        Ok(())
    }

    /// Messages received but not yet taken by the test.
    pub fn inbox(&self) -> impl Iterator<Item = &Received> {
        self.inbox.iter()
    }

    // ---- answering ---------------------------------------------------

    /// Answers a request delivered to this agent with `status` (RFC 3261
    /// §8.2.6: Vias, From, To, Call-ID, CSeq copied; a To tag added).
    pub fn respond(&mut self, req: &Request, status: u16) -> Result<Response> {
        let resp = self.response_for(req, status);
        self.send_response(req, &resp)?;
        Ok(resp)
    }

    /// The response `respond` would send, for a test to add headers to.
    pub fn response_for(&self, req: &Request, status: u16) -> Response {
        let mut resp = Response::for_request(req, status);
        if status > 100 {
            resp.set_to_tag(&random_hex(10));
        }
        resp
    }

    /// Sends `resp` as the answer to `req`, and remembers it so a
    /// retransmission of `req` gets it again.
    pub fn send_response(&mut self, req: &Request, resp: &Response) -> Result<()> {
        let bytes = resp.to_bytes();
        let via = req.headers.top_via().ok();
        self.transport.send_response(via.as_ref(), &bytes)?;
        if resp.is_final() {
            self.transactions
                .insert(transaction_key(req), Some(bytes.clone()));
        }
        Ok(())
    }

    // ---- internals -----------------------------------------------------

    /// Reads until one message worth giving to the test arrives:
    /// retransmitted requests are absorbed here.
    fn read_one(&mut self, deadline: Instant) -> Result<Option<Received>> {
        loop {
            let Some((raw, from)) = self.transport.recv_bytes(deadline)? else {
                return Ok(None);
            };
            let r = self.parse_received(raw, from)?;
            if let Some(req) = r.request() {
                if req.method != Method::Ack {
                    let key = transaction_key(req);
                    match self.transactions.get(&key) {
                        Some(Some(resp)) => {
                            let resp = resp.clone();
                            let via = req.headers.top_via().ok();
                            self.transport.send_response(via.as_ref(), &resp)?;
                            self.absorbed += 1;
                            continue;
                        }
                        Some(None) => {
                            self.absorbed += 1;
                            continue;
                        }
                        None => {
                            self.transactions.insert(key, None);
                        }
                    }
                }
            }
            return Ok(Some(r));
        }
    }

    fn parse_received(&self, raw: Bytes, from: SocketAddr) -> Result<Received> {
        match sip::parse(&raw, &receive_limits()) {
            Ok(message) => Ok(Received { message, raw, from }),
            Err(e) => Err(anyhow!(
                "{} cannot parse what {from} sent ({e}):\n{}",
                self.aor(),
                escape_bytes(&raw)
            )),
        }
    }
}

/// Transaction identity of a received request (RFC 3261 §17.2.3): top Via
/// branch, sent-by and method; without a branch, Call-ID and CSeq.
fn transaction_key(req: &Request) -> String {
    match req.headers.top_via() {
        Ok(v) if v.branch().is_some() => format!(
            "{}|{}|{}",
            v.branch().unwrap_or_default(),
            v.sent_by(),
            req.method
        ),
        _ => format!(
            "{}|{}|{}",
            req.headers.get(&HeaderName::CallId).unwrap_or_default(),
            req.headers.get(&HeaderName::CSeq).unwrap_or_default(),
            req.method
        ),
    }
}

fn top_branch(req: &Request) -> Option<String> {
    top_branch_of(&req.headers)
}

fn top_branch_of(headers: &sip::Headers) -> Option<String> {
    headers
        .top_via()
        .ok()
        .and_then(|v| v.branch().map(str::to_string))
}

fn same_cseq(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    norm(a) == norm(b)
}

fn parse_uri(s: &str) -> Uri {
    match Uri::parse(s) {
        Ok(u) => u,
        Err(e) => panic!("testkit: {s:?} is not a URI: {e}"),
    }
}

/// The Contact values of a response (a 200 to REGISTER lists the bindings).
pub fn response_contacts(resp: &Response) -> Result<Vec<Contact>> {
    match resp.headers.contacts()? {
        None => Ok(Vec::new()),
        Some(ContactList::List(list)) => Ok(list),
        Some(ContactList::Star) => bail!("a response with Contact: *"),
    }
}

/// Distinct Call-IDs among requests, in order (used to count deliveries).
pub fn distinct_call_ids<'a>(reqs: impl IntoIterator<Item = &'a Request>) -> Vec<String> {
    let mut seen = HashSet::new();
    reqs.into_iter()
        .filter_map(|r| r.headers.get(&HeaderName::CallId))
        .filter(|c| seen.insert(c.to_string()))
        .map(str::to_string)
        .collect()
}

/// A request as header lines, for malformed-input tests.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub start_line: String,
    /// Whole header lines (`Name: value`), in order.
    pub headers: Vec<String>,
    pub body: Vec<u8>,
    branch: String,
}

impl RawRequest {
    /// The branch of the Via this request was built with.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// Replaces the start line.
    pub fn start_line(mut self, line: &str) -> Self {
        self.start_line = line.to_string();
        self
    }

    /// Removes every header line with this name (full name only).
    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|l| !line_has_name(l, name));
        self
    }

    /// Appends a header line.
    pub fn header(mut self, line: &str) -> Self {
        self.headers.push(line.to_string());
        self
    }

    /// Replaces the lines named `name` by `name: value` (appended if absent).
    pub fn set(mut self, name: &str, value: &str) -> Self {
        let line = format!("{name}: {value}");
        match self.headers.iter().position(|l| line_has_name(l, name)) {
            Some(i) => {
                self.headers[i] = line;
                let mut j = i + 1;
                while j < self.headers.len() {
                    if line_has_name(&self.headers[j], name) {
                        self.headers.remove(j);
                    } else {
                        j += 1;
                    }
                }
            }
            None => self.headers.push(line),
        }
        self
    }

    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = body.as_ref().to_vec();
        self
    }

    /// Wire bytes; a `Content-Length` with the body size is added unless
    /// a Content-Length (or `l`) line is already there.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.start_line.as_bytes());
        out.extend_from_slice(b"\r\n");
        for l in &self.headers {
            out.extend_from_slice(l.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let has_cl = self
            .headers
            .iter()
            .any(|l| line_has_name(l, "Content-Length") || line_has_name(l, "l"));
        if !has_cl {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

fn line_has_name(line: &str, name: &str) -> bool {
    line.split_once(':')
        .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
}
