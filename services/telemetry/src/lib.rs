//! Herald's telemetry: logs, OpenTelemetry traces and metrics.
//!
//! Owns: installing the `tracing` subscriber (logs on stderr, plus an
//! OpenTelemetry layer when traces are exported), the tracer and meter
//! providers with their exporters (OTLP over gRPC, Prometheus text), the
//! W3C trace-context propagation over gRPC metadata ([`grpc`]), and the
//! metric instruments every role records into ([`metrics`]).
//!
//! Nothing is exported unless configured: without an OTLP endpoint no span
//! leaves the process, and without a Prometheus registry no metric is
//! aggregated (the instruments are then no-ops).
//!
//! Must never: block or fail a request. Exporters run on their own
//! threads and drop what they cannot send; a bad endpoint is reported once
//! at start.

pub mod grpc;
pub mod metrics;
mod sip;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use metrics::{metrics, ConnectionGuard, Metrics};
pub use sip::SipServerTx;

/// What the OpenTelemetry layer sees. Unfiltered, the exporter's own gRPC
/// client (h2, hyper, tonic, tower) would trace itself into every batch.
const OTEL_FILTER: &str = "info,h2=off,hyper=off,tonic=off,tower=off";

/// Whether spans go to an OpenTelemetry tracer (so trace ids exist).
static TRACING: AtomicBool = AtomicBool::new(false);

/// Whether the log filter can show INFO spans, so a `trace_id` field in
/// them would be printed (otherwise recording it is wasted work).
static LOGS_SHOW_SPANS: AtomicBool = AtomicBool::new(false);

/// Telemetry settings, resolved by the binary's configuration.
#[derive(Debug, Clone, Default)]
pub struct TelemetryConfig {
    /// `service.name` of this process (`herald-edge`, `herald-presence`, ...);
    /// `OTEL_SERVICE_NAME` wins when set.
    pub service_name: String,
    /// OTLP gRPC collector (`http://host:4317`). `None` exports nothing
    /// unless the standard `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub otlp_endpoint: Option<String>,
    /// Keep metrics for a Prometheus scrape ([`Telemetry::prometheus_text`]).
    pub prometheus: bool,
    /// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` wins when set.
    pub log_filter: String,
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter for {endpoint}: {reason}")]
    Otlp { endpoint: String, reason: String },
    #[error("cannot build the Prometheus exporter: {0}")]
    Prometheus(String),
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// The installed providers; [`Telemetry::shutdown`] flushes them.
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
    registry: Option<prometheus::Registry>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("traces", &self.tracer.is_some())
            .field("metrics", &self.meter.is_some())
            .field("prometheus", &self.registry.is_some())
            .finish()
    }
}

/// The endpoint to export to: the flag, else the standard environment.
fn otlp_target(config: &TelemetryConfig) -> Option<Option<String>> {
    if let Some(e) = config.otlp_endpoint.as_ref().filter(|e| !e.is_empty()) {
        return Some(Some(e.clone()));
    }
    let standard = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ];
    // `Some(None)`: export, letting the exporter read its endpoint from
    // the environment itself.
    standard
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()))
        .then_some(None)
}

fn resource(config: &TelemetryConfig) -> Resource {
    let builder = Resource::builder();
    let builder = if std::env::var("OTEL_SERVICE_NAME").is_ok_and(|s| !s.is_empty()) {
        builder
    } else {
        builder.with_service_name(config.service_name.clone())
    };
    builder
        .with_attribute(KeyValue::new("process.pid", i64::from(std::process::id())))
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Installs logging and, as configured, trace and metric export. Call once,
/// first thing, inside the Tokio runtime (the OTLP client needs it), and
/// before any role records a metric: instruments are bound to the meter
/// provider installed here.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_filter));
    let shows_info = filter
        .max_level_hint()
        .is_none_or(|max| max >= tracing::level_filters::LevelFilter::INFO);
    LOGS_SHOW_SPANS.store(shows_info, Ordering::Release);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let target = otlp_target(config);
    let resource = resource(config);

    let mut readers_configured = false;
    let mut meter_builder = SdkMeterProvider::builder().with_resource(resource.clone());
    let mut tracer = None;
    if let Some(endpoint) = &target {
        let shown = endpoint
            .clone()
            .unwrap_or_else(|| "OTEL_EXPORTER_OTLP_*".into());
        let fail = |e: &dyn std::fmt::Display| TelemetryError::Otlp {
            endpoint: shown.clone(),
            reason: e.to_string(),
        };
        use opentelemetry_otlp::WithExportConfig;
        let mut spans = opentelemetry_otlp::SpanExporter::builder().with_tonic();
        let mut points = opentelemetry_otlp::MetricExporter::builder().with_tonic();
        if let Some(e) = endpoint {
            spans = spans.with_endpoint(e.clone());
            points = points.with_endpoint(e.clone());
        }
        let spans = spans.build().map_err(|e| fail(&e))?;
        let points = points.build().map_err(|e| fail(&e))?;
        // The batch processor and periodic reader honour OTEL_BSP_* and
        // OTEL_METRIC_EXPORT_INTERVAL for their schedules.
        tracer = Some(
            SdkTracerProvider::builder()
                .with_resource(resource.clone())
                .with_batch_exporter(spans)
                .build(),
        );
        meter_builder = meter_builder.with_periodic_exporter(points);
        readers_configured = true;
    }
    let registry = if config.prometheus {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()
            .map_err(|e| TelemetryError::Prometheus(e.to_string()))?;
        meter_builder = meter_builder.with_reader(exporter);
        readers_configured = true;
        Some(registry)
    } else {
        None
    };
    // With no reader the global meter stays the no-op one: recording a
    // metric then costs a virtual call and nothing else.
    let meter = readers_configured.then(|| meter_builder.build());
    if let Some(m) = &meter {
        opentelemetry::global::set_meter_provider(m.clone());
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let otel = tracer.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("herald"))
            .with_filter(EnvFilter::new(OTEL_FILTER))
    });
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    TRACING.store(tracer.is_some(), Ordering::Release);
    if let Some(endpoint) = &target {
        tracing::info!(
            endpoint = endpoint.as_deref().unwrap_or("from OTEL_EXPORTER_OTLP_*"),
            "exporting traces and metrics over OTLP"
        );
    }
    Ok(Telemetry {
        tracer,
        meter,
        registry,
    })
}

impl Telemetry {
    /// Whether a Prometheus scrape has anything to show.
    pub fn has_prometheus(&self) -> bool {
        self.registry.is_some()
    }

    /// A handle for the `/metrics` endpoint, when Prometheus is on.
    pub fn prometheus(&self) -> Option<Prometheus> {
        self.registry.clone().map(Prometheus)
    }

    /// Flushes and stops the exporters. Call on exit, from outside the
    /// runtime's worker threads but while the runtime still runs (the
    /// exporters' gRPC connection lives on it).
    pub fn shutdown(self) {
        if let Some(t) = self.tracer {
            if let Err(e) = t.shutdown() {
                eprintln!("herald: traces not flushed: {e}");
            }
        }
        if let Some(m) = self.meter {
            if let Err(e) = m.shutdown() {
                eprintln!("herald: metrics not flushed: {e}");
            }
        }
    }
}

/// The Prometheus registry the meter provider exports into.
#[derive(Clone)]
pub struct Prometheus(prometheus::Registry);

impl Prometheus {
    /// The content type of [`Prometheus::render`].
    pub const CONTENT_TYPE: &'static str = "text/plain; version=0.0.4; charset=utf-8";

    /// Every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut out = Vec::new();
        let encoder = prometheus::TextEncoder::new();
        if let Err(e) = encoder.encode(&self.0.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot render metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Whether spans are exported (trace ids exist).
pub fn tracing_enabled() -> bool {
    TRACING.load(Ordering::Acquire)
}

/// Records the span's trace id in its `trace_id` field, so every log line
/// inside it carries the id to look the trace up by. The span must have
/// its parent set already: reading the context starts the span.
pub fn record_trace_id(span: &tracing::Span) {
    if !tracing_enabled() || !LOGS_SHOW_SPANS.load(Ordering::Relaxed) || span.is_disabled() {
        return;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.record("trace_id", tracing::field::display(sc.trace_id()));
    }
}

tokio::task_local! {
    /// When the request being handled on this task arrived (the SIP
    /// request at an edge, the gRPC call at a shard).
    static REQUEST_START: Instant;
}

/// When the request this task handles arrived, or now outside of one.
pub fn request_started() -> Instant {
    REQUEST_START
        .try_with(|t| *t)
        .unwrap_or_else(|_| Instant::now())
}

/// Runs `fut` as the handling of a request that arrived at `start`.
pub async fn with_request_start<F: std::future::Future>(start: Instant, fut: F) -> F::Output {
    REQUEST_START.scope(start, fut).await
}

/// What caused work done later on another task (a NOTIFY queued by a
/// PUBLISH): the trace it belongs to and when the request arrived.
#[derive(Clone)]
pub struct Cause {
    cx: Option<opentelemetry::Context>,
    at: Instant,
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cause").field("at", &self.at).finish()
    }
}

impl Cause {
    /// The request being handled on this task, and its trace when that
    /// trace is sampled (an unsampled one gets no NOTIFY spans at all, so
    /// sampling saves their cost too).
    pub fn here() -> Cause {
        Cause {
            cx: tracing_enabled()
                .then(|| tracing::Span::current().context())
                .filter(|cx| cx.span().span_context().is_sampled()),
            at: request_started(),
        }
    }

    /// A span for a NOTIFY sent because of this cause, in its trace.
    pub fn notify_span(&self, package: &'static str) -> tracing::Span {
        let Some(cx) = &self.cx else {
            return tracing::Span::none();
        };
        let span = tracing::info_span!(
            parent: None,
            "presence.notify",
            otel.name = "NOTIFY",
            presence.package = package,
            trace_id = tracing::field::Empty,
        );
        let _ = span.set_parent(cx.clone());
        record_trace_id(&span);
        span
    }

    /// Records the time from the causing request to now, when its NOTIFY
    /// is handed to the edge (`herald.notify.latency`).
    pub fn notify_sent(&self) {
        metrics()
            .notify_latency
            .record(self.at.elapsed().as_secs_f64(), &[]);
    }
}
