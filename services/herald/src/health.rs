//! Liveness and readiness over HTTP, for Kubernetes probes and load
//! balancers: `GET /healthz` answers 200 while the process runs;
//! `GET /readyz` answers 200 once the role serves and 503 from the moment
//! it starts shutting down, so traffic moves away before it stops.
//! `GET /metrics` answers the metrics in the Prometheus text format.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;

/// Whether this process should receive traffic.
#[derive(Clone, Default)]
pub(crate) struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub(crate) fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The registry `/metrics` renders, set once by `main` after telemetry starts.
static METRICS: OnceLock<Option<telemetry::Prometheus>> = OnceLock::new();

pub(crate) fn set_metrics(prometheus: Option<telemetry::Prometheus>) {
    let _ = METRICS.set(prometheus);
}

async fn metrics() -> axum::response::Response {
    use axum::response::IntoResponse;
    match METRICS.get().and_then(Option::as_ref) {
        Some(p) => (
            [(header::CONTENT_TYPE, telemetry::Prometheus::CONTENT_TYPE)],
            p.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are off\n").into_response(),
    }
}

fn app(readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route(
            "/readyz",
            get(|State(r): State<Readiness>| async move {
                if r.get() {
                    (StatusCode::OK, "ready\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
            }),
        )
        .with_state(readiness)
}

/// Binds `addr` and serves the probes for as long as the process lives.
pub(crate) async fn serve(addr: SocketAddr, readiness: Readiness) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind health {addr}"))?;
    println!("listening health {}", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app(readiness)).await {
            tracing::warn!(error = %e, "health endpoint stopped");
        }
    });
    Ok(())
}
