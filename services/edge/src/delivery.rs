//! Requests Herald sends to clients (MESSAGE deliveries now, NOTIFY with
//! presence): non-INVITE client transactions over the client's flow.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use api::{DeliveryError, EdgeDelivery, FinalResponse, OutboundRequest};
use async_trait::async_trait;
use sip::{HeaderName, Request, Response, Uri};
use store::FlowToken;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::core::BRANCH_PREFIX;
use crate::flow::{Flow, Transport};
use crate::transaction::{ClientSchedule, ClientTimeout};
use crate::Edge;

pub(crate) struct Delivery(pub(crate) Arc<Edge>);

#[async_trait]
impl EdgeDelivery for Delivery {
    async fn send_request(
        &self,
        flow: &FlowToken,
        request: OutboundRequest,
    ) -> Result<FinalResponse, DeliveryError> {
        // The client transaction, a child of whoever asked (a NOTIFY under
        // the PUBLISH that caused it, across processes via gRPC); none when
        // nobody traced the asking (a sampled-out request).
        let span = if tracing::Span::current().is_none() {
            tracing::Span::none()
        } else {
            tracing::info_span!(
                "sip.client",
                otel.name = %format_args!("SIP {} out", request.method.as_str()),
                otel.kind = "client",
                sip.method = %request.method.as_str(),
            )
        };
        self.0.send_request(flow, request).instrument(span).await
    }
}

impl Edge {
    async fn send_request(
        &self,
        token: &FlowToken,
        out: OutboundRequest,
    ) -> Result<FinalResponse, DeliveryError> {
        if out.method == sip::Method::Notify {
            // Not ahead of the answer to the SUBSCRIBE that made the dialog.
            self.answering
                .wait(&out.call_id, self.config.timers.t2)
                .await;
        }
        let mut flow = self
            .flows
            .get(token)
            .ok_or_else(|| DeliveryError::FlowGone(token.0.clone()))?;
        let uri = Uri::parse(&out.uri).map_err(|e| DeliveryError::Invalid(e.to_string()))?;
        if flow.transport == Transport::Udp && !out.flow_only {
            flow.remote = udp_destination(&uri, &flow);
        }
        let branch = format!("{BRANCH_PREFIX}{:016x}", rand::random::<u64>());
        let sent_by = self.sent_by(&flow);
        let mut request = Request::new(out.method.clone(), uri);
        let h = &mut request.headers;
        h.push(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {sent_by};branch={branch};rport",
                flow.transport.via_name()
            ),
        );
        for via in &out.relayed_vias {
            h.push(HeaderName::Via, via.as_str());
        }
        h.push(HeaderName::MaxForwards, out.max_forwards.to_string());
        for route in &out.route {
            h.push(HeaderName::Route, route.as_str());
        }
        h.push(HeaderName::From, out.from.as_str());
        h.push(HeaderName::To, out.to.as_str());
        h.push(HeaderName::CallId, out.call_id.as_str());
        h.push(HeaderName::CSeq, format!("{} {}", out.cseq, out.method));
        // In-dialog requests carry our Contact (RFC 3261 §12.1.1 target).
        if out.method == sip::Method::Notify {
            h.push(HeaderName::Contact, self.contact_for(&flow));
        }
        if let Some(ua) = &self.config.server_header {
            h.push(HeaderName::UserAgent, ua.as_str());
        }
        for (name, value) in &out.headers {
            h.push(HeaderName::parse(name), value.as_str());
        }
        if let Some(ct) = &out.content_type {
            h.push(HeaderName::ContentType, ct.as_str());
        }
        request.body = out.body;
        let bytes = request.to_bytes();

        let (tx, mut rx) = mpsc::channel::<Response>(4);
        self.client_tx().insert(branch.clone(), tx);
        let _cleanup = RemoveOnDrop(self, branch);

        flow.send(bytes.clone())
            .await
            .map_err(DeliveryError::Transport)?;
        let mut schedule = ClientSchedule::new(
            self.config.timers,
            flow.transport.reliable(),
            Instant::now(),
        );
        loop {
            let wake = tokio::time::Instant::from_std(schedule.poll_timeout());
            tokio::select! {
                response = rx.recv() => match response {
                    Some(r) if r.is_final() => {
                        return Ok(FinalResponse { status: r.status, reason: r.reason });
                    }
                    Some(_) => schedule.on_provisional(Instant::now()),
                    None => return Err(DeliveryError::Timeout),
                },
                _ = tokio::time::sleep_until(wake) => match schedule.on_timeout(Instant::now()) {
                    Some(ClientTimeout::Retransmit) => {
                        let _ = flow.send(bytes.clone()).await;
                    }
                    Some(ClientTimeout::TimedOut) => return Err(DeliveryError::Timeout),
                    None => {}
                },
            }
        }
    }

    fn client_tx(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, mpsc::Sender<Response>>> {
        self.client_transactions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// A response: match it to our client transaction by the top Via
    /// branch (§17.1.3); anything else is dropped (we are not a proxy that
    /// forwards responses).
    pub(crate) fn on_response(&self, response: Response) {
        let Ok(via) = response.headers.top_via() else {
            return;
        };
        let Some(branch) = via.branch() else {
            return;
        };
        let sender = self.client_tx().get(branch).cloned();
        if let Some(tx) = sender {
            let _ = tx.try_send(response);
        }
    }
}

/// Unregisters a client transaction however its future ends.
struct RemoveOnDrop<'a>(&'a Edge, String);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        self.0.client_tx().remove(&self.1);
    }
}

/// Where a UDP request to `uri` goes. The registered Contact says where the
/// client listens (RFC 3261 §16.5), and usually that is where it sent the
/// REGISTER from, so the request leaves on the same 5-tuple. A contact with
/// a private address seen from a public one is behind NAT and unreachable
/// as written: answer the flow instead (what NAT-aware registrars do). A
/// contact with a host name (no resolver here yet) also uses the flow.
fn udp_destination(uri: &Uri, flow: &Flow) -> SocketAddr {
    let host = uri.host.trim_start_matches('[').trim_end_matches(']');
    let Ok(ip) = host.parse::<IpAddr>() else {
        return flow.remote;
    };
    if is_private(ip) && !is_private(flow.remote.ip()) {
        return flow.remote;
    }
    SocketAddr::new(ip, uri.port.unwrap_or(5060))
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

#[cfg(test)]
mod tests {
    use super::is_private;

    #[test]
    fn private_ranges() {
        assert!(is_private("192.168.1.5".parse().unwrap()));
        assert!(is_private("10.0.0.1".parse().unwrap()));
        assert!(is_private("fd00::1".parse().unwrap()));
        assert!(!is_private("203.0.113.7".parse().unwrap()));
        assert!(!is_private("2001:db8::1".parse().unwrap()));
    }
}
