//! W3C trace context (`traceparent`, `tracestate`) across gRPC calls, so
//! the spans of one request in several processes form one trace.
//!
//! Client side: [`ClientCall`] opens a client span under the caller's span
//! and writes its context into the request metadata ([`TraceInterceptor`]
//! does the injection alone, for a tonic client built with an
//! interceptor). Server side: [`ServerLayer`] is a tower layer for
//! `tonic::transport::Server::builder().layer(..)` that reads the context
//! from the HTTP/2 headers and runs each call inside a server span
//! parented on it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::KeyValue;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::metrics;

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let Ok(key) = tonic::metadata::MetadataKey::from_bytes(key.as_bytes()) else {
            return;
        };
        if let Ok(value) = tonic::metadata::MetadataValue::try_from(value.as_str()) {
            self.0.insert(key, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes `span`'s trace context into gRPC request metadata.
pub fn inject(span: &tracing::Span, metadata: &mut tonic::metadata::MetadataMap) {
    if !crate::tracing_enabled() {
        return;
    }
    let cx = span.context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut MetadataInjector(metadata))
    });
}

/// The trace context a caller sent in HTTP/2 headers (empty if none).
pub fn extract(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// A tonic interceptor that injects the current span's trace context.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceInterceptor;

impl tonic::service::Interceptor for TraceInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        inject(&tracing::Span::current(), request.metadata_mut());
        Ok(request)
    }
}

/// The last path segment of a message type: `PublishRequest`.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// One outgoing unary call: a client span, its context in the metadata,
/// and its duration in `rpc.client.duration`.
pub struct ClientCall {
    span: tracing::Span,
    request: &'static str,
}

impl std::fmt::Debug for ClientCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClientCall").field(&self.request).finish()
    }
}

impl ClientCall {
    /// Starts a call sending a `Req`, under the current span; writes the
    /// new span's context into `metadata`. Outside any span (work a
    /// sampled-out request queued) the call gets none either.
    pub fn start<Req>(metadata: &mut tonic::metadata::MetadataMap) -> ClientCall {
        let request = short_type_name::<Req>();
        let span = if crate::tracing_enabled() && !tracing::Span::current().is_none() {
            tracing::info_span!(
                "grpc.client",
                otel.name = %format_args!("grpc {request}"),
                otel.kind = "client",
                rpc.system = "grpc",
                rpc.request = request,
            )
        } else {
            tracing::Span::none()
        };
        inject(&span, metadata);
        ClientCall { span, request }
    }

    /// Runs the call inside the span and records its duration.
    pub async fn run<F: Future>(self, call: F) -> F::Output {
        let start = Instant::now();
        let out = call.instrument(self.span).await;
        metrics().grpc_client_duration.record(
            start.elapsed().as_secs_f64(),
            &[KeyValue::new("rpc.request", self.request)],
        );
        out
    }
}

/// Traces and times every call a tonic server serves.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerLayer;

impl<S> tower::Layer<S> for ServerLayer {
    type Service = ServerTrace<S>;

    fn layer(&self, inner: S) -> ServerTrace<S> {
        ServerTrace { inner }
    }
}

/// The service [`ServerLayer`] wraps around a tonic router.
#[derive(Debug, Clone)]
pub struct ServerTrace<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for ServerTrace<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let start = Instant::now();
        // `/herald.presence.v1.Presence/Publish`: a closed set, our own paths.
        let path = request.uri().path().to_owned();
        let method = path.rsplit('/').next().unwrap_or_default().to_owned();
        let span = tracing::info_span!(
            parent: None,
            "grpc.server",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.method = %method,
            trace_id = tracing::field::Empty,
        );
        if crate::tracing_enabled() {
            let _ = span.set_parent(extract(request.headers()));
            crate::record_trace_id(&span);
        }
        let fut = self.inner.call(request);
        Box::pin(crate::with_request_start(
            start,
            async move {
                let out = fut.await;
                metrics().grpc_server_duration.record(
                    start.elapsed().as_secs_f64(),
                    &[KeyValue::new("rpc.method", method)],
                );
                out
            }
            .instrument(span),
        ))
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    use super::{HeaderExtractor, MetadataInjector};

    /// What a client writes into metadata is what a server reads back
    /// from the HTTP/2 headers the metadata becomes.
    #[test]
    fn traceparent_survives_metadata_to_headers() {
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let cx = opentelemetry::Context::new().with_remote_span_context(sc.clone());
        let propagator = TraceContextPropagator::new();
        let mut metadata = tonic::metadata::MetadataMap::new();
        propagator.inject_context(&cx, &mut MetadataInjector(&mut metadata));
        assert_eq!(
            metadata.get("traceparent").and_then(|v| v.to_str().ok()),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        let headers = metadata.into_headers();
        let back = propagator.extract(&HeaderExtractor(&headers));
        let got = back.span().span_context().clone();
        assert_eq!(got.trace_id(), sc.trace_id());
        assert_eq!(got.span_id(), sc.span_id());
        assert!(got.is_remote());
    }

    #[test]
    fn no_headers_no_parent() {
        let headers = http::HeaderMap::new();
        let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        assert!(!cx.span().span_context().is_valid());
    }
}
