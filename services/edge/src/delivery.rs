//! Requests Herald sends to clients (MESSAGE deliveries now, NOTIFY with
//! presence): non-INVITE client transactions over the client's flow.

use std::sync::Arc;
use std::time::Instant;

use api::{DeliveryError, EdgeDelivery, FinalResponse, OutboundRequest};
use async_trait::async_trait;
use sip::{HeaderName, Request, Response, Uri};
use store::FlowToken;
use tokio::sync::mpsc;

use crate::core::BRANCH_PREFIX;
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
        self.0.send_request(flow, request).await
    }
}

impl Edge {
    async fn send_request(
        &self,
        token: &FlowToken,
        out: OutboundRequest,
    ) -> Result<FinalResponse, DeliveryError> {
        let flow = self
            .flows
            .get(token)
            .ok_or_else(|| DeliveryError::FlowGone(token.0.clone()))?;
        let uri = Uri::parse(&out.uri).map_err(|e| DeliveryError::Invalid(e.to_string()))?;
        let branch = format!("{BRANCH_PREFIX}{:016x}", rand::random::<u64>());
        let sent_by = match &self.config.advertised_host {
            Some(host) if host.contains(':') && !host.starts_with('[') => host.clone(),
            Some(host) => format!("{host}:{}", flow.local.port()),
            None => flow.local.to_string(),
        };
        let mut request = Request::new(out.method.clone(), uri);
        let h = &mut request.headers;
        h.push(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {sent_by};branch={branch};rport",
                flow.transport.via_name()
            ),
        );
        h.push(HeaderName::MaxForwards, "70");
        for route in &out.route {
            h.push(HeaderName::Route, route.as_str());
        }
        h.push(HeaderName::From, out.from.as_str());
        h.push(HeaderName::To, out.to.as_str());
        h.push(HeaderName::CallId, out.call_id.as_str());
        h.push(HeaderName::CSeq, format!("{} {}", out.cseq, out.method));
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
