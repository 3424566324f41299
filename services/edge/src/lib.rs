//! The SIP edge.
//!
//! Owns: sockets (UDP, TCP, TLS, WS, WSS), the flows clients reach Herald over, the RFC
//! 3261 non-INVITE transaction layer in both directions, Via handling
//! (RFC 3581), request validation (Max-Forwards, loops, Require), and the
//! SIP front of each service: REGISTER and MESSAGE become typed calls on
//! [`api::Messaging`], PUBLISH and SUBSCRIBE on [`api::Presence`]; requests services send come back through
//! [`api::EdgeDelivery`] and leave over the client's flow.
//!
//! Must never: keep durable state. Everything an edge holds (flows,
//! transactions) may vanish with it; clients reconnect and retransmit.

mod auth;
mod core;
mod delivery;
mod flow;
mod limits;
mod message;
mod presence;
mod register;
mod transaction;
mod transport;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::{EdgeDelivery, Messaging, Presence};
use sip::{Limits, Method, Response};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use flow::{Flow, FlowTable, Transport};
pub use limits::{FloodLimits, MessageSizes, BURST_SECONDS, MAX_TRACKED};
pub use transaction::{ClientSchedule, ClientTimeout, ServerTransactions, Timers, TransactionKey};
pub use transport::tls::{TlsCertificates, TlsError};

/// Edge settings.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Parser limits; `max_message_size` is taken per transport from
    /// `message_sizes`.
    pub limits: Limits,
    pub message_sizes: MessageSizes,
    /// Requests per second and connections per source and user.
    pub flood: FloodLimits,
    pub timers: Timers,
    /// Domains served; empty serves any domain asked for (the open default).
    pub domains: Vec<String>,
    /// Host (and port) to put in Via of requests Herald sends, when the
    /// bound address is not reachable as is (0.0.0.0, NAT). Defaults to
    /// the local address of the flow.
    pub advertised_host: Option<String>,
    /// Server and User-Agent header value; `None` sends none.
    pub server_header: Option<String>,
    /// In a cluster, the address shards reach this edge's gRPC delivery
    /// service at; it prefixes every flow token this edge mints.
    pub public_grpc: Option<String>,
    /// On shutdown, how long requests already being handled may take to
    /// get their answers before the edge exits anyway.
    pub drain_timeout: Duration,
    /// WebSocket keep-alive: ping every interval, drop a connection silent
    /// for two; `None` turns it off.
    pub ws_ping_interval: Option<Duration>,
    /// How long a TLS (or WSS) client may take to finish its handshake.
    pub tls_handshake_timeout: Duration,
    /// How often the certificate files are checked for a change.
    pub tls_reload_interval: Duration,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            limits: Limits::default(),
            message_sizes: MessageSizes::default(),
            flood: FloodLimits::default(),
            timers: Timers::default(),
            domains: Vec::new(),
            advertised_host: None,
            server_header: Some("Herald".into()),
            public_grpc: None,
            drain_timeout: Duration::from_secs(10),
            ws_ping_interval: Some(Duration::from_secs(30)),
            tls_handshake_timeout: Duration::from_secs(10),
            tls_reload_interval: Duration::from_secs(10),
        }
    }
}

/// Sockets bound by the caller (so it can print and test them).
#[derive(Default)]
pub struct Listeners {
    pub udp: Vec<UdpSocket>,
    pub tcp: Vec<TcpListener>,
    /// SIP over WebSocket (RFC 7118) listeners.
    pub ws: Vec<TcpListener>,
    /// SIP over TLS listeners; they need `certificates`.
    pub tls: Vec<TcpListener>,
    /// SIP over secure WebSocket listeners; they need `certificates`.
    pub wss: Vec<TcpListener>,
    /// The certificate TLS and WSS present (reloaded when its files change).
    pub certificates: Option<Arc<TlsCertificates>>,
}

/// The services an edge hands requests to.
#[derive(Clone)]
pub struct Services {
    pub messaging: Arc<dyn Messaging>,
    pub presence: Arc<dyn Presence>,
}

/// Methods this edge serves (the Allow header).
pub const ALLOWED: &[Method] = &[
    Method::Register,
    Method::Message,
    Method::Options,
    Method::Publish,
    Method::Subscribe,
];

/// One edge: shared by its socket loops and by services that deliver
/// through it.
pub struct Edge {
    config: EdgeConfig,
    flows: FlowTable,
    server_transactions: Mutex<ServerTransactions>,
    /// Client transactions waiting for responses, by our Via branch.
    client_transactions: Mutex<HashMap<String, mpsc::Sender<Response>>>,
    services: std::sync::OnceLock<Services>,
    /// Addresses of our listeners, for loop detection.
    own_addrs: Mutex<Vec<SocketAddr>>,
    /// Requests being handled now (drained on shutdown).
    inflight: std::sync::atomic::AtomicUsize,
    /// Set when a realm is configured: requests must then authenticate.
    authenticator: std::sync::OnceLock<Arc<::auth::Authenticator>>,
    /// Request rates and open connections per source and user.
    flood: limits::Flood,
    /// SUBSCRIBEs not answered yet, by Call-ID: a NOTIFY of that dialog
    /// waits until the answer has gone out (see `core::Answering`).
    answering: core::Answering,
}

impl Edge {
    pub fn new(config: EdgeConfig) -> Arc<Edge> {
        let flood = limits::Flood::new(&config.flood);
        Arc::new(Edge {
            server_transactions: Mutex::new(ServerTransactions::new(config.timers)),
            answering: core::Answering::default(),
            flows: FlowTable::with_owner(config.public_grpc.clone()),
            config,
            client_transactions: Mutex::new(HashMap::new()),
            services: std::sync::OnceLock::new(),
            own_addrs: Mutex::new(Vec::new()),
            inflight: std::sync::atomic::AtomicUsize::new(0),
            authenticator: std::sync::OnceLock::new(),
            flood,
        })
    }

    /// The handle services use to send requests to clients through this edge.
    pub fn delivery(self: &Arc<Self>) -> Arc<dyn EdgeDelivery> {
        Arc::new(delivery::Delivery(Arc::clone(self)))
    }

    /// Requires digest authentication (see the `auth` module) from now on.
    /// Set once, before [`run`]; a second call is ignored.
    pub fn require_auth(&self, authenticator: Arc<::auth::Authenticator>) {
        let _ = self.authenticator.set(authenticator);
    }

    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }
}

/// Serves SIP on `listeners` until `shutdown` is cancelled; then stops
/// reading new requests and waits (at most `drain_timeout`) for those
/// already accepted to be answered.
pub async fn run(
    edge: Arc<Edge>,
    listeners: Listeners,
    services: Services,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if edge.services.set(services).is_err() {
        return Err(std::io::Error::other("edge is already running"));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for socket in listeners.udp {
        let socket = Arc::new(socket);
        edge.flows.add_udp_socket(Arc::clone(&socket))?;
        edge.own_addrs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(socket.local_addr()?);
        tasks.spawn(transport::udp::serve(
            Arc::clone(&edge),
            socket,
            shutdown.clone(),
        ));
    }
    for listener in listeners.tcp {
        edge.own_addrs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(listener.local_addr()?);
        tasks.spawn(transport::tcp::serve(
            Arc::clone(&edge),
            listener,
            shutdown.clone(),
        ));
    }
    for listener in listeners.ws {
        tasks.spawn(transport::ws::serve(
            Arc::clone(&edge),
            listener,
            shutdown.clone(),
        ));
    }
    if !listeners.tls.is_empty() || !listeners.wss.is_empty() {
        let Some(certificates) = listeners.certificates else {
            return Err(std::io::Error::other(
                "TLS and WSS listeners need a certificate",
            ));
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(
            certificates
                .server_config()
                .map_err(std::io::Error::other)?,
        );
        for listener in listeners.tls {
            edge.own_addrs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(listener.local_addr()?);
            tasks.spawn(transport::tls::serve_tls(
                Arc::clone(&edge),
                listener,
                acceptor.clone(),
                shutdown.clone(),
            ));
        }
        for listener in listeners.wss {
            tasks.spawn(transport::tls::serve_wss(
                Arc::clone(&edge),
                listener,
                acceptor.clone(),
                shutdown.clone(),
            ));
        }
        tasks.spawn(transport::tls::watch(
            certificates,
            edge.config.tls_reload_interval,
            shutdown.clone(),
        ));
    }
    // Timer J housekeeping for server transactions.
    {
        let edge = Arc::clone(&edge);
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => edge.lock_server_tx().expire(Instant::now()),
                    _ = shutdown.cancelled() => return,
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let deadline = Instant::now() + edge.config.drain_timeout;
    loop {
        let left = edge.inflight.load(std::sync::atomic::Ordering::Acquire);
        if left == 0 {
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                requests = left,
                "drain timeout: exiting with requests unanswered"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
