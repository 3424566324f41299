//! The roles this binary runs: each builds its services from the
//! configuration, serves them, and stops on SIGTERM.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use api::{EdgeDelivery, Messaging, Presence};
use edge::{Edge, EdgeConfig, FloodLimits, Listeners, MessageSizes, Services, Timers};
use messaging::{MessagingConfig, MessagingService, RegistrarConfig};
use presence::{Policy, PresenceConfig, PresenceService};
use shard::{
    Connect, ConnectError, LiveShards, OwnedMessaging, OwnedPresence, ShardId, ShardListSpec,
    ShardMap, ShardedMessaging, ShardedPresence, SrvDiscovery,
};
use sip::{Aor, Limits};
use store::{MemoryStore, RedisStore, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, OnClose, PolicyName};
use crate::health::Readiness;
use crate::{bind, stop_on_signal};

/// Every role in one process: the embedded default.
pub(crate) async fn all(config: Config) -> anyhow::Result<()> {
    let listeners = sip_listeners(&config).await?;
    warn_open(&config);
    let store = store(&config).await?;
    let edge = Edge::new(edge_config(&config, None));
    let authenticator = require_auth(&config, &edge, Some(store.clone())).await?;
    let messaging =
        MessagingService::new(store.clone(), edge.delivery(), messaging_config(&config)?);
    let mut presence_cfg = presence_config(&config);
    // The in-memory store survives nothing, so a second copy of presence
    // state in it would only cost memory.
    presence_cfg.persist = config.redis.is_some();
    let presence = PresenceService::new(store.clone(), edge.delivery(), presence_cfg)
        .with_documents(documents_source(&config, store.clone()));
    presence_gauges(&presence);
    // One owner, for good: one epoch for the process's life (Redis; the
    // memory store does not fence).
    if let Some(epoch) = store
        .take_epoch()
        .await
        .context("cannot take a presence epoch")?
    {
        tracing::info!(epoch, "presence ownership epoch taken");
    }
    // Pick up presence state a persistent store kept across a restart.
    let restored = presence
        .restore(None)
        .await
        .context("cannot load presence state")?;
    if restored > 0 {
        tracing::info!(presentities = restored, "presence state restored");
    }
    let (shutdown, readiness) = lifecycle(&config).await?;
    tokio::spawn(
        presence
            .clone()
            .run_expiry(shutdown.clone().cancelled_owned()),
    );
    let presence: Arc<dyn Presence> = Arc::new(presence);
    let services = Services {
        messaging: Arc::new(messaging),
        presence: presence.clone(),
    };
    let server = tokio::spawn(edge::run(edge, listeners, services, shutdown.clone()));
    let xcap_task = xcap_listener(&config).await?.map(|listener| {
        tokio::spawn(serve_xcap(
            &config,
            listener,
            store.clone(),
            authenticator,
            Some(presence),
            shutdown.clone(),
        ))
    });
    readiness.set(true);
    println!("ready");
    tracing::info!(
        store = if config.redis.is_some() {
            "redis"
        } else {
            "memory"
        },
        xcap = xcap_task.is_some(),
        "herald ready (roles: edge, messaging, presence, xcap)"
    );
    server.await.context("edge task failed")??;
    if let Some(task) = xcap_task {
        task.await.context("XCAP task failed")??;
    }
    tracing::info!("herald stopped");
    Ok(())
}

/// A SIP edge of a cluster.
pub(crate) async fn edge(config: Config) -> anyhow::Result<()> {
    let presence_shards = live_shards(&config, "presence", &config.presence_shards, None)
        .await?
        .context("an edge needs --presence-shards")?;
    let messaging_shards = live_shards(&config, "messaging", &config.messaging_shards, None)
        .await?
        .context("an edge needs --messaging-shards")?;
    check_addresses(&config.messaging_shards, &messaging_clients())?;
    let presence = sharded_presence(&config, presence_shards.clone())?;
    let listeners = sip_listeners(&config).await?;
    let (grpc, public) = grpc_listener(&config).await?;
    warn_open(&config);

    let edge = Edge::new(edge_config(&config, Some(public)));
    require_auth(&config, &edge, None).await?;
    let services = Services {
        messaging: Arc::new(ShardedMessaging::new(
            messaging_shards.clone(),
            messaging_clients(),
        )),
        presence: Arc::new(presence),
    };
    let (shutdown, readiness) = lifecycle(&config).await?;
    keep_current(&config, &presence_shards, &shutdown);
    keep_current(&config, &messaging_shards, &shutdown);
    let deliveries = tonic::transport::Server::builder()
        .layer(telemetry::grpc::ServerLayer)
        .add_service(proto::edge_delivery_service(edge.delivery()))
        .serve_with_incoming_shutdown(incoming(grpc), shutdown.clone().cancelled_owned());
    let grpc_task = tokio::spawn(deliveries);
    let sip_task = tokio::spawn(edge::run(edge, listeners, services, shutdown.clone()));
    readiness.set(true);
    println!("ready");
    tracing::info!("herald edge ready");
    sip_task.await.context("edge task failed")??;
    grpc_task.await.context("gRPC task failed")??;
    Ok(())
}

/// One presence shard of a cluster.
pub(crate) async fn presence(config: Config) -> anyhow::Result<()> {
    let me = shard_id(&config, &config.presence_shards, "--presence-shards")?;
    let shards = live_shards(&config, "presence", &config.presence_shards, Some(me))
        .await?
        .context("a shard needs --presence-shards")?;
    let store = cluster_store(&config).await?;
    let (grpc, _) = grpc_listener(&config).await?;
    let delivery = edge_router(&config);
    let service = PresenceService::new(store.clone(), delivery, presence_config(&config))
        .with_documents(documents_source(&config, store.clone()));
    presence_gauges(&service);
    // Watch before reading the list, so no change slips between.
    let changes = shards.subscribe();
    let owned_slots = owned(shards.current().as_deref(), me);
    // An epoch above every shard's that read an older list: from here the
    // presentities this shard claims are fenced against them.
    let epoch = store
        .take_epoch()
        .await
        .context("cannot take a presence epoch")?;
    tracing::info!(shard = %me, epoch, "presence ownership epoch taken");
    let restored = service
        .restore(Some(&owned_slots))
        .await
        .context("cannot load presence state")?;
    tracing::info!(shard = %me, presentities = restored, slots = owned_slots.len(), "presence state loaded");
    let (shutdown, readiness) = lifecycle(&config).await?;
    tokio::spawn(
        service
            .clone()
            .run_expiry(shutdown.clone().cancelled_owned()),
    );
    tokio::spawn(follow_ownership(
        service.clone(),
        store,
        changes,
        me,
        owned_slots,
    ));
    keep_current(&config, &shards, &shutdown);
    let owned: Arc<dyn Presence> = Arc::new(OwnedPresence::new(shards, me, Arc::new(service)));
    readiness.set(true);
    println!("ready");
    tracing::info!(shard = %me, "herald presence shard ready");
    tonic::transport::Server::builder()
        .layer(telemetry::grpc::ServerLayer)
        .add_service(proto::presence_service(owned))
        .serve_with_incoming_shutdown(incoming(grpc), shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// The slots `me` owns under `map` (none without a list).
fn owned(map: Option<&ShardMap>, me: ShardId) -> Vec<u16> {
    map.map(|m| m.slots_of(me, store::SLOTS))
        .unwrap_or_default()
}

/// Follows the shard list of a presence shard: slots that moved away are
/// let go (their state stays in Redis for the new owner), a new epoch is
/// taken (higher than that of any shard still on the older list, whose
/// writes to what this shard claims are then refused), and slots that
/// moved here are claimed and loaded from Redis.
async fn follow_ownership(
    service: PresenceService,
    store: Arc<dyn Store>,
    mut changes: tokio::sync::watch::Receiver<Option<Arc<ShardMap>>>,
    me: ShardId,
    mut owned_slots: Vec<u16>,
) {
    while changes.changed().await.is_ok() {
        let map = changes.borrow_and_update().clone();
        let Some(map) = map else { continue };
        let now = owned(Some(&map), me);
        let before: HashSet<u16> = owned_slots.iter().copied().collect();
        let after: HashSet<u16> = now.iter().copied().collect();
        let lost: Vec<u16> = before.difference(&after).copied().collect();
        let gained: Vec<u16> = after.difference(&before).copied().collect();
        if !lost.is_empty() {
            let released = service.release(&lost).await;
            tracing::info!(shard = %me, slots = lost.len(), presentities = released, "slots moved to other shards, let go");
        }
        match store.take_epoch().await {
            Ok(epoch) => tracing::info!(shard = %me, epoch, "new shard list, new presence epoch"),
            // Writes go on with the older epoch: refused only where a
            // newer owner claimed, which is right while the list is not.
            Err(e) => {
                tracing::error!(shard = %me, error = %e, "new shard list but no new presence epoch")
            }
        }
        if !gained.is_empty() {
            match service.restore(Some(&gained)).await {
                Ok(n) => {
                    tracing::info!(shard = %me, slots = gained.len(), presentities = n, "slots moved here, loaded")
                }
                Err(e) => {
                    tracing::error!(shard = %me, error = %e, "slots moved here but their state did not load")
                }
            }
        }
        owned_slots = now;
    }
}

/// One messaging shard of a cluster.
pub(crate) async fn messaging(config: Config) -> anyhow::Result<()> {
    let me = shard_id(&config, &config.messaging_shards, "--messaging-shards")?;
    let shards = live_shards(&config, "messaging", &config.messaging_shards, Some(me))
        .await?
        .context("a shard needs --messaging-shards")?;
    let store = cluster_store(&config).await?;
    let (grpc, _) = grpc_listener(&config).await?;
    let delivery = edge_router(&config);
    let service = MessagingService::new(store, delivery, messaging_config(&config)?);
    let (shutdown, readiness) = lifecycle(&config).await?;
    keep_current(&config, &shards, &shutdown);
    let owned: Arc<dyn Messaging> = Arc::new(OwnedMessaging::new(shards, me, Arc::new(service)));
    readiness.set(true);
    println!("ready");
    tracing::info!(shard = %me, "herald messaging shard ready");
    tonic::transport::Server::builder()
        .layer(telemetry::grpc::ServerLayer)
        .add_service(proto::messaging_service(owned))
        .serve_with_incoming_shutdown(incoming(grpc), shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// The presence shards behind one router: each request goes to the shard
/// owning its AOR, over gRPC.
fn sharded_presence(config: &Config, shards: LiveShards) -> anyhow::Result<ShardedPresence> {
    let connect = presence_clients();
    check_addresses(&config.presence_shards, &connect)?;
    Ok(ShardedPresence::new(shards, connect))
}

/// A role's shard list as configured (`None` when none is given): fixed,
/// or read from DNS now and kept current by [`keep_current`]. `me` is the
/// shard holding it, if it is one.
async fn live_shards(
    config: &Config,
    role: &'static str,
    spec: &ShardListSpec,
    me: Option<ShardId>,
) -> anyhow::Result<Option<LiveShards>> {
    Ok(match spec {
        ShardListSpec::Static(addrs) if addrs.is_empty() => None,
        ShardListSpec::Static(addrs) => {
            Some(LiveShards::fixed(role, ShardMap::new(addrs.clone())?))
        }
        ShardListSpec::Srv(name) => {
            let source = SrvDiscovery::new(name.clone(), config.dns_server)
                .with_context(|| format!("cannot set up DNS for {name}"))?;
            let live = LiveShards::discovered(role, Arc::new(source), me).await;
            match live.current() {
                Some(map) => {
                    tracing::info!(role, srv = %name, shards = map.len(), list = ?map.addrs(), "{role} shards found in DNS")
                }
                None => {
                    tracing::warn!(role, srv = %name, "no {role} shard list in DNS yet; {role} requests get 503 until there is one")
                }
            }
            Some(live)
        }
    })
}

/// Re-reads a discovered list every --shard-dns-interval until shutdown.
fn keep_current(config: &Config, shards: &LiveShards, shutdown: &CancellationToken) {
    shards.spawn_refresh(
        Duration::from_secs(config.shard_dns_interval),
        shutdown.clone().cancelled_owned(),
    );
}

/// gRPC clients of presence shards, one per address, connecting lazily.
fn presence_clients() -> Connect<dyn Presence> {
    let client = proto::ClientConfig::default();
    Arc::new(move |addr: &str| {
        proto::GrpcPresence::connect_lazy(addr.to_owned(), &client)
            .map(|c| Arc::new(c) as Arc<dyn Presence>)
            .map_err(|e| ConnectError {
                addr: addr.to_owned(),
                reason: e.to_string(),
            })
    })
}

/// gRPC clients of messaging shards, one per address, connecting lazily.
fn messaging_clients() -> Connect<dyn Messaging> {
    let client = proto::ClientConfig::default();
    Arc::new(move |addr: &str| {
        proto::GrpcMessaging::connect_lazy(addr.to_owned(), &client)
            .map(|c| Arc::new(c) as Arc<dyn Messaging>)
            .map_err(|e| ConnectError {
                addr: addr.to_owned(),
                reason: e.to_string(),
            })
    })
}

/// A given list's addresses must make clients: a typo stops the start
/// (exit with an error), not every request later.
fn check_addresses<C: ?Sized>(spec: &ShardListSpec, connect: &Connect<C>) -> anyhow::Result<()> {
    if let ShardListSpec::Static(addrs) = spec {
        for addr in addrs {
            connect(addr)?;
        }
    }
    Ok(())
}

/// An XCAP server (RFC 4825), documents in Redis.
pub(crate) async fn xcap(config: Config) -> anyhow::Result<()> {
    let store = cluster_store(&config).await?;
    let listener = xcap_listener(&config)
        .await?
        .context("the xcap role needs --xcap-listen")?;
    let authenticator = authenticator(&config, store.clone()).await?;
    // Changes go to the presence shard owning the document's user.
    let shards = live_shards(&config, "presence", &config.presence_shards, None).await?;
    let presence: Option<Arc<dyn Presence>> = match &shards {
        None => {
            tracing::warn!(
                "xcap without --presence-shards: rule changes reach presence only when it reloads"
            );
            None
        }
        Some(shards) => Some(Arc::new(sharded_presence(&config, shards.clone())?)),
    };
    let (shutdown, readiness) = lifecycle(&config).await?;
    if let Some(shards) = &shards {
        keep_current(&config, shards, &shutdown);
    }
    let task = tokio::spawn(serve_xcap(
        &config,
        listener,
        store,
        authenticator,
        presence,
        shutdown,
    ));
    readiness.set(true);
    println!("ready");
    tracing::info!("herald xcap ready");
    task.await.context("XCAP task failed")??;
    Ok(())
}

async fn xcap_listener(config: &Config) -> anyhow::Result<Option<TcpListener>> {
    let Some(addr) = config.xcap_listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind XCAP {addr}"))?;
    println!("listening xcap {}", listener.local_addr()?);
    Ok(Some(listener))
}

/// Serves XCAP until `shutdown`: HTTP Digest with the SIP users when a
/// realm is configured (else open, loudly), and every change told to
/// `presence`.
fn serve_xcap(
    config: &Config,
    listener: TcpListener,
    store: Arc<dyn Store>,
    authenticator: Option<Arc<auth::Authenticator>>,
    presence: Option<Arc<dyn Presence>>,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static {
    let xcap_config = xcap::XcapConfig {
        root: config.xcap_root.clone(),
        max_document_size: config.xcap_max_document_size,
    };
    let auth: Arc<dyn xcap::XcapAuth> = match authenticator {
        Some(a) => Arc::new(crate::documents::DigestXcap(a)),
        None => {
            tracing::warn!(
                "XCAP runs without --realm: anyone may read and change anyone's documents"
            );
            Arc::new(xcap::OpenAuth::new(&xcap_config.root))
        }
    };
    let observer: Arc<dyn xcap::XcapObserver> = match presence {
        Some(p) => Arc::new(crate::documents::TellPresence(p)),
        None => Arc::new(xcap::NoObserver),
    };
    async move {
        xcap::run(xcap_config, listener, store, auth, observer, shutdown)
            .await
            .context("XCAP server failed")
    }
}

/// The shutdown token (cancelled on SIGTERM or Ctrl-C, after readiness
/// goes false) and the readiness flag, served on --health-listen if set.
async fn lifecycle(config: &Config) -> anyhow::Result<(CancellationToken, Readiness)> {
    let token = CancellationToken::new();
    let readiness = Readiness::default();
    if let Some(addr) = config.health_listen {
        crate::health::serve(addr, readiness.clone()).await?;
    }
    tokio::spawn(stop_on_signal(token.clone(), readiness.clone()));
    Ok((token, readiness))
}

/// This shard's ordinal: --shard-id, or with a dns+srv: list the ordinal
/// at the end of the host name (a StatefulSet pod's name).
fn shard_id(config: &Config, shards: &ShardListSpec, flag: &str) -> anyhow::Result<ShardId> {
    let id = match (config.shard_id, shards) {
        (Some(id), _) => id,
        (None, ShardListSpec::Srv(_)) => {
            let host =
                host_name().context("a shard needs --shard-id (no host name to read it from)")?;
            shard::discovery::ordinal_of(&host).with_context(|| {
                format!("a shard needs --shard-id (host name {host} ends in no ordinal)")
            })?
        }
        (None, ShardListSpec::Static(_)) => bail!("a shard needs --shard-id"),
    };
    match shards {
        ShardListSpec::Static(addrs) if addrs.is_empty() => bail!("a shard needs {flag}"),
        ShardListSpec::Static(addrs) if id as usize >= addrs.len() => {
            bail!("--shard-id {id} is not in {flag} ({} shards)", addrs.len())
        }
        _ => Ok(ShardId(id)),
    }
}

fn host_name() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

fn edge_router(config: &Config) -> Arc<dyn EdgeDelivery> {
    Arc::new(proto::EdgeRouter::new(
        config.edges.clone(),
        proto::ClientConfig::DELIVERY_DEFAULT,
    ))
}

async fn sip_listeners(config: &Config) -> anyhow::Result<Listeners> {
    // The certificate first: a bad one stops the start before any socket
    // is bound or announced.
    let certificates = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(edge::TlsCertificates::load(cert, key)?),
        _ => None,
    };
    let mut listeners = bind(&config.sip_listen, config.udp_buffer).await?;
    for addr in &config.ws_listen {
        let ws = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot bind WebSocket {addr}"))?;
        println!("listening sip+ws {}", ws.local_addr()?);
        listeners.ws.push(ws);
    }
    if let Some(certificates) = certificates {
        for addr in &config.tls_listen {
            let tls = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind TLS {addr}"))?;
            println!("listening sip+tls {}", tls.local_addr()?);
            listeners.tls.push(tls);
        }
        for addr in &config.wss_listen {
            let wss = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind secure WebSocket {addr}"))?;
            println!("listening sip+wss {}", wss.local_addr()?);
            listeners.wss.push(wss);
        }
        listeners.certificates = Some(certificates);
    }
    for s in &listeners.udp {
        println!("listening sip+udp {}", s.local_addr()?);
    }
    for l in &listeners.tcp {
        println!("listening sip+tcp {}", l.local_addr()?);
    }
    Ok(listeners)
}

/// Binds the gRPC port; returns it with the URL others reach it at.
async fn grpc_listener(config: &Config) -> anyhow::Result<(TcpListener, String)> {
    let addr = config
        .grpc_listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind gRPC {addr}"))?;
    let local = listener.local_addr()?;
    println!("listening grpc {local}");
    let public = config
        .public_grpc
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    Ok((listener, public))
}

fn incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    // Nagle off, as on the client side (proto::channel): with it, a gRPC
    // answer written while the previous one is unacknowledged waited for
    // the peer's delayed ACK, which at a few thousand calls a second
    // became milliseconds of queueing on every hop.
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}

/// Publications and subscriptions held, as gauges read at each collection.
fn presence_gauges(presence: &PresenceService) {
    let m = telemetry::metrics();
    let p = presence.clone();
    m.gauge(
        "herald.presence.publications",
        "Publications held by this process",
        move || p.held().0 as i64,
    );
    let p = presence.clone();
    m.gauge(
        "herald.presence.subscriptions",
        "Subscriptions held by this process",
        move || p.held().1 as i64,
    );
}

async fn store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &config.redis {
        // Every Redis operation gets a span and a latency sample.
        Some(url) => Arc::new(store::Traced::new(Arc::new(
            RedisStore::connect(url)
                .await
                .with_context(|| format!("cannot reach Redis at {url}"))?,
        ))),
        None => Arc::new(MemoryStore::new()),
    })
}

async fn cluster_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if config.redis.is_none() {
        bail!("a shard keeps its state in Redis: give --redis");
    }
    store(config).await
}

fn warn_open(config: &Config) {
    if config.domains.is_empty() {
        tracing::warn!("serving every SIP domain asked for (open default); restrict with --domain");
    }
    if config.realm.is_none() {
        tracing::warn!(
            "NO AUTHENTICATION: anyone may register, publish and send as anyone; \
             set --realm and add users with `herald user add` before facing a network"
        );
    }
}

/// With --realm, the edge requires digest authentication against the
/// credentials in `store` (the edge role, which has no store of its own,
/// reads Redis with --redis, else memory filled from --credentials).
async fn require_auth(
    config: &Config,
    edge: &Edge,
    store: Option<Arc<dyn Store>>,
) -> anyhow::Result<Option<Arc<auth::Authenticator>>> {
    if config.realm.is_none() {
        return Ok(None);
    }
    let store = match store {
        Some(s) => s,
        None => self::store(config).await?,
    };
    let authenticator = authenticator(config, store).await?;
    if let Some(a) = &authenticator {
        edge.require_auth(a.clone());
    }
    Ok(authenticator)
}

/// The digest authenticator of this process when --realm is set, with
/// the users of `store` (and of --credentials, loaded into it).
async fn authenticator(
    config: &Config,
    store: Arc<dyn Store>,
) -> anyhow::Result<Option<Arc<auth::Authenticator>>> {
    let Some(realm) = &config.realm else {
        return Ok(None);
    };
    match &config.credentials {
        Some(path) => crate::users::load_and_watch(store.clone(), path.clone()).await?,
        None if config.redis.is_none() => {
            tracing::warn!("--realm without --redis or --credentials: no user can authenticate")
        }
        None => {}
    }
    let nonce_secret = match &config.nonce_secret {
        Some(secret) => Some(secret.as_bytes().to_vec()),
        None => {
            tracing::warn!(
                "no --nonce-secret: nonces are signed with a random key of this process, \
                 so they are not accepted by other edges nor after a restart"
            );
            None
        }
    };
    let auth_config = auth::AuthConfig {
        nonce_secret,
        nonce_lifetime: Duration::from_secs(config.nonce_lifetime),
        max_failures: config.auth_max_failures,
        failure_window: Duration::from_secs(config.auth_failure_window),
        backoff: Duration::from_secs(config.auth_backoff),
        ..auth::AuthConfig::new(realm.clone())
    };
    tracing::info!(%realm, "digest authentication required");
    Ok(Some(Arc::new(auth::Authenticator::new(auth_config, store))))
}

/// Where presence reads pres-rules, pidf-manipulation and xcap-diff state:
/// the XCAP documents in the store.
fn documents_source(
    config: &Config,
    store: Arc<dyn Store>,
) -> Arc<dyn presence::PresenceDocuments> {
    Arc::new(crate::documents::StoreDocuments::new(
        store,
        config.xcap_url(),
    ))
}

fn edge_config(config: &Config, public_grpc: Option<String>) -> EdgeConfig {
    EdgeConfig {
        limits: Limits {
            max_message_size: config.max_message_size,
            max_body_size: config.max_body_size,
            ..Limits::default()
        },
        message_sizes: MessageSizes {
            udp: config.max_udp_message_size,
            stream: config.max_tcp_message_size,
            ws: config.max_ws_message_size,
        },
        flood: FloodLimits {
            requests_per_ip: config.max_requests_per_ip,
            requests_per_user: config.max_requests_per_user,
            connections_per_ip: config.max_connections_per_ip,
        },
        timers: Timers {
            t1: Duration::from_millis(config.timer_t1_ms),
            ..Timers::default()
        },
        domains: config.domains.clone(),
        advertised_host: config.advertise.clone(),
        server_header: config.server_header.clone(),
        public_grpc,
        drain_timeout: Duration::from_secs(config.drain_timeout),
        ws_ping_interval: (config.ws_ping_interval > 0)
            .then(|| Duration::from_secs(config.ws_ping_interval)),
        tls_handshake_timeout: Duration::from_secs(config.tls_handshake_timeout),
        tls_reload_interval: Duration::from_secs(config.tls_reload_interval),
    }
}

fn messaging_config(config: &Config) -> anyhow::Result<MessagingConfig> {
    let directory = if config.users.is_empty() {
        None
    } else {
        let mut users = HashSet::new();
        for u in &config.users {
            let text = if u.starts_with("sip:") || u.starts_with("sips:") {
                u.clone()
            } else {
                format!("sip:{u}")
            };
            users.insert(
                text.parse::<Aor>()
                    .with_context(|| format!("bad user {u}"))?,
            );
        }
        Some(users)
    };
    Ok(MessagingConfig {
        registrar: RegistrarConfig {
            min_expires: config.min_expires,
            max_expires: config.max_expires,
            default_expires: config.default_expires,
            max_contacts: config.max_contacts,
        },
        delivery_timeout: Duration::from_secs(config.delivery_timeout),
        offline_ttl: Duration::from_secs(config.offline_ttl),
        offline_max_per_user: config.offline_max,
        directory,
    })
}

fn presence_config(config: &Config) -> PresenceConfig {
    PresenceConfig {
        publish_min_expires: config.publish_min_expires,
        publish_max_expires: config.publish_max_expires,
        publish_default_expires: config.publish_max_expires.min(3600),
        subscribe_min_expires: config.subscribe_min_expires,
        subscribe_max_expires: config.subscribe_max_expires,
        subscribe_default_expires: config.subscribe_max_expires.min(3600),
        policy: match config.presence_policy {
            PolicyName::Allow => Policy::Allow,
            PolicyName::Confirm => Policy::Confirm,
        },
        xml_limits: pidf::XmlLimits {
            max_bytes: config.max_body_size,
            ..pidf::XmlLimits::default()
        },
        expire_publications_on_close: config.publication_on_close == OnClose::Expire,
        max_publications_per_presentity: config.max_publications,
        max_watchers_per_presentity: config.max_watchers,
        max_subscriptions_per_watcher: config.max_subscriptions_per_watcher,
        notify_queue_max: config.notify_queue,
        persist: true,
    }
}
