//! The metric instruments, created once from the global meter provider.
//!
//! Names follow the OpenTelemetry conventions (dots, units in `unit`);
//! the Prometheus exporter turns `sip.server.requests` into
//! `sip_server_requests_total` and a histogram in seconds into
//! `..._seconds_bucket`. Attributes are kept to small closed sets (method,
//! status, transport, operation) so series stay few.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::metrics::{Counter, Histogram, Meter, ObservableGauge, UpDownCounter};
use opentelemetry::KeyValue;

/// Buckets for latencies, seconds: from a fast Redis call (50 µs) to a
/// NOTIFY waiting on a slow client (10 s). Dense below 2 ms, where a gRPC
/// hop and a Redis round trip on one host fall, so their quantiles mean
/// something (docs/benchmarks.md reads them).
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0004, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003,
    0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every instrument Herald records into.
pub struct Metrics {
    /// SIP requests answered, by method, status and transport.
    pub sip_requests: Counter<u64>,
    /// SIP server transactions being handled now, by method.
    pub sip_inflight: UpDownCounter<i64>,
    /// Connections open now (TCP, WebSocket, TLS), by transport.
    pub connections: UpDownCounter<i64>,
    /// Contact bindings held (added minus removed by REGISTER; bindings
    /// that expire unseen are counted until their address of record is
    /// next read).
    pub registrations: UpDownCounter<i64>,
    /// Time from a PUBLISH arriving to each NOTIFY it causes being handed
    /// to the edge.
    pub notify_latency: Histogram<f64>,
    /// Redis operations of the store, by operation.
    pub redis_duration: Histogram<f64>,
    /// gRPC calls served, by method.
    pub grpc_server_duration: Histogram<f64>,
    /// gRPC calls made, by request type.
    pub grpc_client_duration: Histogram<f64>,
    meter: Meter,
    /// Gauges read from role state at each collection, kept for the life
    /// of the process.
    gauges: std::sync::Mutex<Vec<ObservableGauge<i64>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The instruments. The first call binds them to the global meter
/// provider, so [`crate::init`] must come first (before it they would
/// stay no-ops for the life of the process).
pub fn metrics() -> &'static Metrics {
    METRICS.get_or_init(|| Metrics::new(opentelemetry::global::meter("herald")))
}

fn latency(meter: &Meter, name: &'static str, description: &'static str) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_unit("s")
        .with_description(description)
        .with_boundaries(LATENCY_BUCKETS.to_vec())
        .build()
}

impl Metrics {
    fn new(meter: Meter) -> Metrics {
        Metrics {
            sip_requests: meter
                .u64_counter("sip.server.requests")
                .with_description("SIP requests answered, by method, status and transport")
                .build(),
            sip_inflight: meter
                .i64_up_down_counter("sip.server.active_transactions")
                .with_description("SIP server transactions being handled")
                .build(),
            connections: meter
                .i64_up_down_counter("sip.connections.active")
                .with_description("Open SIP connections, by transport")
                .build(),
            registrations: meter
                .i64_up_down_counter("herald.registrations.active")
                .with_description("Contact bindings held by the registrar")
                .build(),
            notify_latency: latency(
                &meter,
                "herald.notify.latency",
                "From a PUBLISH arriving to each NOTIFY it causes being sent",
            ),
            redis_duration: latency(&meter, "herald.redis.duration", "Redis store operations"),
            grpc_server_duration: latency(&meter, "rpc.server.duration", "gRPC calls served"),
            grpc_client_duration: latency(&meter, "rpc.client.duration", "gRPC calls made"),
            meter,
            gauges: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// A gauge whose value `read` gives at each collection (a count a role
    /// keeps anyway, such as publications held).
    pub fn gauge(
        &self,
        name: &'static str,
        description: &'static str,
        read: impl Fn() -> i64 + Send + Sync + 'static,
    ) {
        let gauge = self
            .meter
            .i64_observable_gauge(name)
            .with_description(description)
            .with_callback(move |o| o.observe(read(), &[]))
            .build();
        self.gauges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(gauge);
    }

    /// The meter, for instruments a role registers itself (observable
    /// gauges over its own state).
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Counts a connection as open until the guard drops.
    pub fn connection(&'static self, transport: &'static str) -> ConnectionGuard {
        let attrs = [KeyValue::new("transport", transport)];
        self.connections.add(1, &attrs);
        ConnectionGuard {
            metrics: self,
            transport,
        }
    }

    /// Records one Redis operation's duration.
    pub fn redis(&self, operation: &'static str, took: Duration) {
        self.redis_duration
            .record(took.as_secs_f64(), &[KeyValue::new("operation", operation)]);
    }
}

/// An open connection, counted in `sip.connections.active` until dropped.
pub struct ConnectionGuard {
    metrics: &'static Metrics,
    transport: &'static str,
}

impl std::fmt::Debug for ConnectionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ConnectionGuard")
            .field(&self.transport)
            .finish()
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics
            .connections
            .add(-1, &[KeyValue::new("transport", self.transport)]);
    }
}
