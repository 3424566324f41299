//! One SIP server transaction at an edge: its span and its metrics.

use std::future::Future;
use std::time::Instant;

use opentelemetry::KeyValue;
use tracing::Instrument;

use crate::metrics::metrics;

/// Methods named as themselves in metrics; any other token is `other`, so
/// a client inventing methods cannot mint series.
const KNOWN: &[&str] = &[
    "REGISTER",
    "MESSAGE",
    "PUBLISH",
    "SUBSCRIBE",
    "NOTIFY",
    "OPTIONS",
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "PRACK",
    "UPDATE",
    "REFER",
];

fn method_label(method: &str) -> &'static str {
    KNOWN
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or("other")
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
        let method = method_label(method);
        let span = tracing::info_span!(
            parent: None,
            "sip.server",
            otel.name = %format_args!("SIP {method}"),
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
