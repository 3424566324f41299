//! The request pipeline: parse, fix the Via, match transactions, validate,
//! dispatch to the service front, answer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip::{CodecError, HeaderName, Headers, Message, Method, Request, Response, Scheme};
use tokio::sync::watch;

use crate::flow::Flow;
use crate::transaction::{ServerAction, ServerTransactions, TransactionKey};
use crate::{Edge, ALLOWED};

/// Our branches start with this after the magic cookie, so a request that
/// carries one of our own Vias below the top is a loop.
pub(crate) const BRANCH_PREFIX: &str = "z9hG4bK-hrl-";

/// Option tags we support (Supported, and what Require may name).
pub(crate) const SUPPORTED: &[&str] = &[];

impl Edge {
    pub(crate) fn lock_server_tx(&self) -> MutexGuard<'_, ServerTransactions> {
        self.server_transactions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Entry point for every message a transport received.
    pub(crate) async fn receive(self: Arc<Self>, bytes: Bytes, flow: Flow) {
        let _inflight = Inflight::enter(Arc::clone(&self));
        // Keep-alives over UDP (CRLF, or STUN per RFC 5626 §3.5.2) are not
        // SIP; ignore them.
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        match sip::parse(&bytes, &self.sip_limits(flow.transport)) {
            Ok(Message::Request(request)) => self.on_request(request, flow).await,
            Ok(Message::Response(response)) => self.on_response(response),
            Err(e) => {
                tracing::debug!(remote = %flow.remote, error = %e, "malformed message");
                self.reject_malformed(&bytes, &e, &flow).await;
            }
        }
    }

    async fn on_request(self: Arc<Self>, mut request: Request, flow: Flow) {
        fix_top_via(&mut request.headers, flow.remote);
        if request.method == Method::Ack {
            // We send no INVITE final responses that need an ACK matched
            // (INVITE is refused statelessly), so ACKs end here.
            return;
        }
        // Flood limits come before the transaction layer (crate::limits).
        if let Some(refusal) = self.over_limit(&request, &flow) {
            if let Some(response) = refusal {
                let to = response_address(&request.headers, &flow);
                let _ = flow.send_to(response.to_bytes(), to).await;
            }
            return;
        }
        let Some(key) = TransactionKey::of(&request) else {
            return;
        };
        let action = self.lock_server_tx().on_request(&key, Instant::now());
        match action {
            ServerAction::New => {}
            ServerAction::Absorb => return,
            ServerAction::Resend(bytes) => {
                let to = response_address(&request.headers, &flow);
                let _ = flow.send_to(bytes, to).await;
                return;
            }
        }
        let _answering = (request.method == Method::Subscribe)
            .then(|| request.headers.call_id().ok())
            .flatten()
            .map(|call_id| self.answering.begin(call_id));
        // One span and one count per server transaction (telemetry).
        let tx = telemetry::SipServerTx::start(request.method.as_str(), flow.transport.name());
        let response = tx.run(self.handle(&request, &flow)).await;
        tx.finish(response.status);
        let bytes = response.to_bytes();
        self.lock_server_tx().on_final(
            &key,
            bytes.clone(),
            flow.transport.reliable(),
            Instant::now(),
        );
        let to = response_address(&request.headers, &flow);
        if let Err(e) = flow.send_to(bytes, to).await {
            tracing::debug!(error = %e, "response not sent");
        }
    }

    /// Validation common to every request, then the method's front.
    async fn handle(&self, request: &Request, flow: &Flow) -> Response {
        if self.is_loop(request) {
            return self.reply(request, 482);
        }
        // A SIPS Request-URI asks for TLS on every hop (RFC 3261 §26.2.2,
        // RFC 5630 §3.1.3); one that came over a hop without it cannot be
        // served as asked: the scheme is refused on this transport (416,
        // RFC 3261 §8.2.2.1).
        if request.uri.scheme == Scheme::Sips && !flow.transport.secure() {
            return self.reply(request, 416);
        }
        // RFC 3261 §8.2.2.3: every Require tag must be understood.
        let unsupported: Vec<String> = request
            .headers
            .require()
            .into_iter()
            .chain(request.headers.proxy_require())
            .filter(|t| !SUPPORTED.contains(&t.as_str()))
            .collect();
        if !unsupported.is_empty() && request.method != Method::Cancel {
            let mut r = self.reply(request, 420);
            r.headers
                .push(HeaderName::Unsupported, unsupported.join(", "));
            return r;
        }
        // Digest authentication, when a realm is configured (auth.rs).
        let authenticated = match self.authenticate(request, flow).await {
            Ok(user) => user,
            Err(refusal) => return refusal,
        };
        if let Some(user) = &authenticated {
            if let Some(refusal) = self.user_over_limit(request, user) {
                return refusal;
            }
        }
        match &request.method {
            Method::Options => self.options(request),
            Method::Register => self.register(request, flow, authenticated).await,
            Method::Message => self.message(request, authenticated).await,
            Method::Publish => self.publish(request, flow, authenticated).await,
            Method::Subscribe => self.subscribe(request, flow, authenticated).await,
            // No INVITE or other transaction to cancel here (§9.2).
            Method::Cancel => self.reply(request, 481),
            Method::Extension(_) => {
                // RFC 3261 §21.5.2: a method we do not know at all is 501.
                let mut r = self.reply(request, 501);
                r.headers.push(HeaderName::Allow, allow_value());
                r
            }
            _ => {
                let mut r = self.reply(request, 405);
                r.headers.push(HeaderName::Allow, allow_value());
                r
            }
        }
    }

    /// OPTIONS (RFC 3261 §11.2): what this server does.
    fn options(&self, request: &Request) -> Response {
        let mut r = self.reply(request, 200);
        r.headers.push(HeaderName::Allow, allow_value());
        r.headers
            .push(HeaderName::Accept, "text/plain, message/cpim, */*");
        r.headers
            .push(HeaderName::Other("Accept-Encoding".into()), "identity");
        r.headers.push(HeaderName::Supported, SUPPORTED.join(", "));
        r.headers
            .push(HeaderName::AllowEvents, api::PRESENCE_EVENTS.join(", "));
        r
    }

    /// A response to `request` with a To tag (§8.2.6.2) and our Server header.
    pub(crate) fn reply(&self, request: &Request, status: u16) -> Response {
        let mut r = Response::for_request(request, status);
        if status > 100 {
            r.set_to_tag(&local_tag());
        }
        self.add_server(&mut r);
        r
    }

    pub(crate) fn add_server(&self, r: &mut Response) {
        if let Some(server) = &self.config.server_header {
            r.headers.push(HeaderName::Server, server.as_str());
        }
    }

    /// The sent-by we put in Via (and Contact) for requests over `flow`.
    pub(crate) fn sent_by(&self, flow: &Flow) -> String {
        match &self.config.advertised_host {
            Some(host) if host.contains(':') && !host.starts_with('[') => host.clone(),
            Some(host) => format!("{host}:{}", flow.local.port()),
            None => flow.local.to_string(),
        }
    }

    /// A Via below the top one that is ours (our address with our branch
    /// prefix) means the request went round and came back (§16.3 step 4).
    fn is_loop(&self, request: &Request) -> bool {
        let Ok(vias) = request.headers.vias() else {
            return false;
        };
        let own = self.own_addrs.lock().unwrap_or_else(|e| e.into_inner());
        vias.iter().skip(1).any(|via| {
            via.branch().is_some_and(|b| b.starts_with(BRANCH_PREFIX))
                && own.iter().any(|a| {
                    via.port.unwrap_or(5060) == a.port()
                        && (via.host == a.ip().to_string()
                            || self.config.advertised_host.as_deref() == Some(via.host.as_str()))
                })
        })
    }

    /// A connection flow ended: services drop what needed it (RFC 5626
    /// style: subscriptions over it cannot be notified any more).
    pub(crate) async fn connection_closed(&self, token: &store::FlowToken) {
        if let Some(services) = self.services.get() {
            services.presence.flow_closed(token.clone()).await;
        }
    }

    /// Is `domain` one this edge serves?
    pub(crate) fn serves_domain(&self, domain: &str) -> bool {
        self.config.domains.is_empty()
            || self
                .config
                .domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// Answers bytes that did not parse, when there is enough to answer
    /// to; a response or unanswerable garbage is dropped (RFC 3261 §16.3).
    pub(crate) async fn reject_malformed(&self, bytes: &[u8], error: &CodecError, flow: &Flow) {
        let limits = self.sip_limits(flow.transport);
        let Some(mut response) = sip::error_response(bytes, error, &limits) else {
            return;
        };
        fix_top_via(&mut response.headers, flow.remote);
        response.set_to_tag(&local_tag());
        self.add_server(&mut response);
        let to = response_address(&response.headers, flow);
        let _ = flow.send_to(response.to_bytes(), to).await;
    }
}

/// Counts a request as being handled until dropped, so shutdown can wait
/// for the answers of what it already accepted.
struct Inflight(Arc<Edge>);

impl Inflight {
    fn enter(edge: Arc<Edge>) -> Self {
        edge.inflight
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Inflight(edge)
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0
            .inflight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

fn allow_value() -> String {
    ALLOWED
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn local_tag() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// RFC 3261 §18.2.1 and RFC 3581 §4: record where the request really came
/// from in the top Via so the response finds its way back.
fn fix_top_via(headers: &mut Headers, source: SocketAddr) {
    let Ok(mut via) = headers.top_via() else {
        return;
    };
    let source_ip = source.ip().to_string();
    let host = via.host.trim_start_matches('[').trim_end_matches(']');
    let same_host = host.parse::<IpAddr>().is_ok_and(|ip| ip == source.ip());
    let wants_rport = via.param("rport").is_some();
    if !same_host || wants_rport {
        via.set_param("received", Some(&source_ip));
    }
    if wants_rport {
        via.set_param("rport", Some(&source.port().to_string()));
    }
    if !same_host || wants_rport {
        headers.pop_first_value(&HeaderName::Via);
        headers.push_front(HeaderName::Via, via.to_string());
    }
}

/// Where a UDP response goes (RFC 3261 §18.2.2, RFC 3581 §4): to the
/// source address and port when the client asked for rport, else to the
/// received address and the sent-by port. Connections answer on
/// themselves whatever this says.
fn response_address(headers: &Headers, flow: &Flow) -> SocketAddr {
    let Ok(via) = headers.top_via() else {
        return flow.remote;
    };
    if via.param("rport").flatten().is_some() {
        return flow.remote;
    }
    SocketAddr::new(flow.remote.ip(), via.port.unwrap_or(5060))
}

/// SUBSCRIBEs being answered, by Call-ID. The shard sends the first NOTIFY
/// as soon as it has the subscription, and in a cluster that NOTIFY comes
/// back to this edge on its own gRPC call, which may beat the SUBSCRIBE's
/// answer out of the edge. RFC 6665 §4.1.2.4 has the subscriber accept a
/// NOTIFY before the 200, but many do not (SIPp scenarios, simple UAs drop
/// it as unexpected), so the edge sends a dialog's NOTIFY only once the
/// SUBSCRIBE's final response has gone.
#[derive(Default)]
pub(crate) struct Answering {
    pending: Mutex<HashMap<String, watch::Receiver<()>>>,
}

/// Held while a SUBSCRIBE is handled and answered; dropping it lets that
/// dialog's NOTIFYs go.
pub(crate) struct AnsweringGuard<'a> {
    answering: &'a Answering,
    call_id: String,
    sender: watch::Sender<()>,
}

impl Answering {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, watch::Receiver<()>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn begin(&self, call_id: &str) -> AnsweringGuard<'_> {
        let (sender, receiver) = watch::channel(());
        self.lock().insert(call_id.to_string(), receiver);
        AnsweringGuard {
            answering: self,
            call_id: call_id.to_string(),
            sender,
        }
    }

    /// Waits, up to `limit`, until no SUBSCRIBE with `call_id` is being
    /// answered.
    pub(crate) async fn wait(&self, call_id: &str, limit: Duration) {
        let pending = self.lock().get(call_id).cloned();
        if let Some(mut receiver) = pending {
            // Ends when the guard drops its sender (the answer went).
            let _ = tokio::time::timeout(limit, receiver.changed()).await;
        }
    }
}

impl Drop for AnsweringGuard<'_> {
    fn drop(&mut self) {
        let mut pending = self.answering.lock();
        // A newer SUBSCRIBE of the same Call-ID may have taken the entry.
        if pending
            .get(&self.call_id)
            .is_some_and(|r| r.same_channel(&self.sender.subscribe()))
        {
            pending.remove(&self.call_id);
        }
    }
}

#[cfg(test)]
mod answering_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_notify_waits_for_its_subscribe_to_be_answered() {
        let answering = Arc::new(Answering::default());
        let limit = Duration::from_secs(4);

        // Nothing pending: no wait at all.
        let started = tokio::time::Instant::now();
        answering.wait("c1", limit).await;
        assert_eq!(started.elapsed(), Duration::ZERO);

        // Pending: the NOTIFY goes when the answer has gone, not before.
        let guard = answering.begin("c1");
        let waiter = {
            let answering = Arc::clone(&answering);
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                answering.wait("c1", limit).await;
                started.elapsed()
            })
        };
        // Another dialog is not held up by it.
        answering.wait("c2", limit).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiter.is_finished());
        drop(guard);
        let waited = waiter.await.unwrap();
        assert!(
            waited >= Duration::from_millis(300) && waited < limit,
            "{waited:?}"
        );
        assert!(answering.lock().is_empty());

        // A SUBSCRIBE that never gets answered holds its NOTIFY only so long.
        let _stuck = answering.begin("c3");
        let started = tokio::time::Instant::now();
        answering.wait("c3", limit).await;
        assert_eq!(started.elapsed(), limit);
    }
}
