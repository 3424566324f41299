//! Forking one MESSAGE to every contact (RFC 3428 §4, RFC 3261 §16.6-16.7).

use std::sync::Arc;
use std::time::Duration;

use api::{DeliveryError, EdgeDelivery, OutboundRequest, PageMessage};
use sip::Method;
use store::Binding;
use tokio::sync::mpsc;

pub(crate) enum ForkResult {
    /// The first 2xx.
    Accepted(u16),
    /// Every contact answered with an error; the best one (RFC 3261 §16.7
    /// step 6: a 6xx wins, else the lowest class).
    Rejected { status: u16, reason: String },
    /// No contact answered at all (timeouts, closed flows).
    Unreachable,
}

/// The MESSAGE as relayed to a contact of a recipient that is online now,
/// as a stateful proxy relays it (RFC 3428 §4): the sender's Vias below
/// ours, the same identifiers, one hop less.
pub(crate) fn live_request(message: &PageMessage) -> OutboundRequest {
    OutboundRequest {
        method: Method::Message,
        uri: String::new(),
        from: message.from.clone(),
        to: message.to.clone(),
        call_id: message.call_id.clone(),
        cseq: message.cseq,
        relayed_vias: message.vias.clone(),
        route: Vec::new(),
        content_type: message.content_type.clone(),
        headers: message.headers.clone(),
        body: message.body.clone(),
        max_forwards: message.max_forwards,
        flow_only: false,
    }
}

/// Sends `request` to every contact in parallel and returns as soon as one
/// accepts, or when all have answered, or at `timeout`. Legs still running
/// then finish on their own: their transactions must not be abandoned
/// mid-flight.
pub(crate) async fn fork(
    delivery: &Arc<dyn EdgeDelivery>,
    contacts: &[Binding],
    request: OutboundRequest,
    timeout: Duration,
) -> ForkResult {
    let (tx, mut rx) = mpsc::channel(contacts.len().max(1));
    for binding in contacts {
        let mut leg = request.clone();
        leg.uri = binding.contact.clone();
        leg.flow_only = binding.instance.is_some() && binding.reg_id.is_some();
        let flow = binding.flow.clone();
        let delivery = Arc::clone(delivery);
        let tx = tx.clone();
        tokio::spawn(async move {
            let result = delivery.send_request(&flow, leg).await;
            let _ = tx.send(result).await;
        });
    }
    drop(tx);

    let mut best: Option<(u16, String)> = None;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = rx.recv() => match next {
                Some(Ok(resp)) if (200..300).contains(&resp.status) => {
                    return ForkResult::Accepted(resp.status)
                }
                Some(Ok(resp)) => {
                    if better(resp.status, best.as_ref().map(|b| b.0)) {
                        best = Some((resp.status, resp.reason));
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "MESSAGE leg failed");
                    if let DeliveryError::Invalid(_) = e {
                        // A contact we cannot even address counts as gone.
                    }
                }
                None => break,
            },
            _ = &mut deadline => break,
        }
    }
    match best {
        Some((status, reason)) => ForkResult::Rejected { status, reason },
        None => ForkResult::Unreachable,
    }
}

/// RFC 3261 §16.7 step 6, simplified for non-INVITE: any 6xx beats the
/// rest; otherwise the lowest status class wins (4xx before 5xx), and
/// 408/503-like transient answers are only kept if nothing better came.
fn better(status: u16, current: Option<u16>) -> bool {
    match current {
        None => true,
        Some(c) if c >= 600 => false,
        Some(_) if status >= 600 => true,
        Some(c) => status / 100 < c / 100,
    }
}
