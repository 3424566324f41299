//! Liveness and readiness over HTTP, for Kubernetes probes and load
//! balancers: `GET /healthz` answers 200 while the process runs;
//! `GET /readyz` answers 200 once the role serves and 503 from the moment
//! it starts shutting down, so traffic moves away before it stops.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
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

fn app(readiness: Readiness) -> Router {
    Router::new()
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
