//! One SIP server transaction at an edge: its span and its metrics.

use std::future::Future;
use std::time::Instant;

use opentelemetry::KeyValue;
use tracing::Instrument;

use crate::metrics::metrics;

/// Methods named as themselves in metrics; any other token is `other`, so
/// a client inventing methods cannot mint series.
/// Each with its span name, spelled out so naming a span allocates nothing.
const KNOWN: &[(&str, &str)] = &[
    ("REGISTER", "SIP REGISTER"),
    ("MESSAGE", "SIP MESSAGE"),
    ("PUBLISH", "SIP PUBLISH"),
    ("SUBSCRIBE", "SIP SUBSCRIBE"),
    ("NOTIFY", "SIP NOTIFY"),
    ("OPTIONS", "SIP OPTIONS"),
    ("INVITE", "SIP INVITE"),
    ("ACK", "SIP ACK"),
    ("BYE", "SIP BYE"),
    ("CANCEL", "SIP CANCEL"),
    ("INFO", "SIP INFO"),
    ("PRACK", "SIP PRACK"),
    ("UPDATE", "SIP UPDATE"),
    ("REFER", "SIP REFER"),
];

/// The metric label and span name of `method`.
fn known(method: &str) -> (&'static str, &'static str) {
    KNOWN
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or(("other", "SIP other"))
}

#[cfg(test)]
fn method_label(method: &str) -> &'static str {
    known(method).0
}

/// A server transaction being handled: counted in flight until dropped,
/// answered with [`SipServerTx::finish`].
pub struct SipServerTx {
    span: tracing::Span,
    method: &'static str,
    transport: &'static str,
    start: Instant,
}

impl std::fmt::Debug for SipServerTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipServerTx")
            .field("method", &self.method)
            .field("transport", &self.transport)
            .finish()
    }
}

impl SipServerTx {
    /// A new transaction for a request of `method` over `transport`
    /// (`udp`, `tcp`, `ws`, ...): the root of its trace.
    pub fn start(method: &str, transport: &'static str) -> SipServerTx {
        let (method, name) = known(method);
        let span = tracing::info_span!(
            parent: None,
            "sip.server",
            otel.name = name,
            otel.kind = "server",
            sip.method = method,
            sip.transport = transport,
            sip.status = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        crate::record_trace_id(&span);
        metrics()
            .sip_inflight
            .add(1, &[KeyValue::new("method", method)]);
        SipServerTx {
            span,
            method,
            transport,
            start: Instant::now(),
        }
    }

    /// Runs the handling of the request inside the transaction's span.
    pub async fn run<F: Future>(&self, fut: F) -> F::Output {
        crate::with_request_start(self.start, fut.instrument(self.span.clone())).await
    }

    /// The final status sent.
    pub fn finish(&self, status: u16) {
        self.span.record("sip.status", status);
        if status >= 500 {
            self.span.record("otel.status_code", "ERROR");
        }
        metrics().sip_requests.add(
            1,
            &[
                KeyValue::new("method", self.method),
                KeyValue::new("status", i64::from(status)),
                KeyValue::new("transport", self.transport),
            ],
        );
    }
}

impl Drop for SipServerTx {
    fn drop(&mut self) {
        metrics()
            .sip_inflight
            .add(-1, &[KeyValue::new("method", self.method)]);
    }
}

#[cfg(test)]
mod tests {
    use super::method_label;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label("PUBLISH"), "PUBLISH");
        assert_eq!(method_label("publish"), "PUBLISH");
        assert_eq!(method_label("XFOOBAR"), "other");
        assert_eq!(method_label(""), "other");
    }
}
