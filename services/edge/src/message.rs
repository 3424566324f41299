//! The page-mode MESSAGE front (RFC 3428).

use api::{MessageOutcome, PageMessage};
use sip::{Aor, HeaderName, Request, Response, Scheme};

use crate::Edge;

/// Headers that belong to this hop, not to the message: not carried to
/// the recipient (the delivery leg makes its own).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name,
        HeaderName::Via
            | HeaderName::Route
            | HeaderName::RecordRoute
            | HeaderName::MaxForwards
            | HeaderName::ContentLength
            | HeaderName::ContentType
            | HeaderName::From
            | HeaderName::To
            | HeaderName::CallId
            | HeaderName::CSeq
            | HeaderName::Contact
            | HeaderName::Authorization
            | HeaderName::ProxyAuthorization
            | HeaderName::ProxyRequire
            | HeaderName::Expires
    )
}

impl Edge {
    pub(crate) async fn message(&self, request: &Request, authenticated: Option<Aor>) -> Response {
        // We forward MESSAGE to the recipient, so we are a hop: Max-Forwards
        // 0 stops here (RFC 3261 §16.3 step 2).
        let max_forwards = match request.headers.max_forwards() {
            Ok(Some(0)) => return self.reply(request, 483),
            Ok(Some(n)) => n - 1,
            Ok(None) => 69,
            Err(_) => return self.reply(request, 400),
        };
        if request.uri.scheme == Scheme::Tel {
            return self.reply(request, 416);
        }
        let target = match Aor::from_uri(&request.uri) {
            Ok(a) if a.user().is_some() => a,
            _ => return self.reply(request, 404),
        };
        if !self.serves_domain(target.domain()) {
            return self.reply(request, 404);
        }
        let (Ok(from), Some(to), Ok(call_id), Ok(cseq)) = (
            request.headers.from_addr(),
            request.headers.get(&HeaderName::To),
            request.headers.call_id(),
            request.headers.cseq(),
        ) else {
            return self.reply(request, 400);
        };
        let Some(services) = self.services.get() else {
            return self.reply(request, 503);
        };
        let message = PageMessage {
            target,
            from: from.to_string(),
            to: to.to_string(),
            call_id: call_id.to_string(),
            cseq: cseq.seq,
            content_type: request
                .headers
                .get(&HeaderName::ContentType)
                .map(str::to_string),
            headers: request
                .headers
                .iter()
                .filter(|h| !hop_by_hop(&h.name))
                .map(|h| (h.name.as_str().to_string(), h.value.clone()))
                .collect(),
            body: request.body.clone(),
            max_forwards,
            vias: request
                .headers
                .vias()
                .map(|v| v.iter().map(|via| via.to_string()).collect())
                .unwrap_or_default(),
            authenticated,
        };
        match services.messaging.message(message).await {
            Ok(MessageOutcome::Delivered { status }) => self.reply(request, status),
            // RFC 3428 §7: 202 when the message is accepted for later delivery.
            Ok(MessageOutcome::Stored) => self.reply(request, 202),
            Ok(MessageOutcome::Rejected { status, reason }) => {
                let mut r = self.reply(request, status);
                r.reason = reason;
                r
            }
            Err(e) => {
                let mut r = self.reply(request, e.status());
                if e.status() == 503 {
                    r.headers.push(HeaderName::RetryAfter, "5");
                }
                r
            }
        }
    }
}
