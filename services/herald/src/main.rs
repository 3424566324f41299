//! The `herald` binary: reads the configuration, binds sockets, and runs
//! the roles asked for. All protocol logic lives in the role crates.

mod config;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use config::{Cli, Config, OnClose, PolicyName, Role};
use edge::{Edge, EdgeConfig, Listeners, Services, Timers};
use messaging::{MessagingConfig, MessagingService, RegistrarConfig};
use presence::{Policy, PresenceConfig, PresenceService};
use sip::{Aor, Limits};
use store::MemoryStore;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::resolve(cli.options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("herald: {e:#}");
            // EX_CONFIG-style exit for bad configuration.
            return ExitCode::from(64);
        }
    };
    init_logging(&config.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("herald: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.role.unwrap_or(Role::All) {
            Role::All => run_all(config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run_all(config: Config) -> anyhow::Result<()> {
    let listeners = bind(&config.sip_listen, config.udp_buffer).await?;
    for s in &listeners.udp {
        println!("listening sip+udp {}", s.local_addr()?);
    }
    for l in &listeners.tcp {
        println!("listening sip+tcp {}", l.local_addr()?);
    }

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
    if config.domains.is_empty() {
        tracing::warn!("serving every SIP domain asked for (open default); restrict with --domain");
    }
    tracing::warn!("no authentication configured: anyone may register and send as anyone");

    let edge = Edge::new(EdgeConfig {
        limits: Limits {
            max_message_size: config.max_message_size,
            max_body_size: config.max_body_size,
            ..Limits::default()
        },
        timers: Timers {
            t1: Duration::from_millis(config.timer_t1_ms),
            ..Timers::default()
        },
        domains: config.domains.clone(),
        advertised_host: config.advertise.clone(),
        server_header: config.server_header.clone(),
    });
    let store: Arc<dyn store::Store> = Arc::new(MemoryStore::new());
    let messaging = MessagingService::new(
        store.clone(),
        edge.delivery(),
        MessagingConfig {
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
        },
    );

    let presence = PresenceService::new(
        store.clone(),
        edge.delivery(),
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
            notify_queue_max: config.notify_queue,
        },
    );

    // Pick up presence state a persistent store kept across a restart.
    let restored = presence
        .restore()
        .await
        .context("cannot load presence state")?;
    if restored > 0 {
        tracing::info!(presentities = restored, "presence state restored");
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    tokio::spawn(
        presence
            .clone()
            .run_expiry(shutdown.clone().cancelled_owned()),
    );
    let services = Services {
        messaging: Arc::new(messaging),
        presence: Arc::new(presence),
    };
    let server = tokio::spawn(edge::run(edge, listeners, services, shutdown.clone()));
    println!("ready");
    tracing::info!("herald ready (roles: edge, messaging, presence; store: memory)");
    server.await.context("edge task failed")??;
    tracing::info!("herald stopped");
    Ok(())
}

/// Binds UDP then TCP on the same port for each address. With port 0 the
/// port UDP got is taken for TCP too, retrying if TCP finds it in use.
async fn bind(addrs: &[SocketAddr], udp_buffer: usize) -> anyhow::Result<Listeners> {
    let mut listeners = Listeners::default();
    for addr in addrs {
        let mut attempts = 0;
        loop {
            let udp =
                bind_udp(*addr, udp_buffer).with_context(|| format!("cannot bind UDP {addr}"))?;
            let port = udp.local_addr()?.port();
            match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
                Ok(tcp) => {
                    listeners.udp.push(udp);
                    listeners.tcp.push(tcp);
                    break;
                }
                Err(e) if addr.port() == 0 && attempts < 20 => {
                    attempts += 1;
                    tracing::debug!(port, error = %e, "TCP port taken, trying another");
                }
                Err(e) => return Err(e).with_context(|| format!("cannot bind TCP {addr}")),
            }
        }
    }
    Ok(listeners)
}

/// A UDP socket with large kernel buffers: SIP over UDP arrives in bursts
/// (a PUBLISH fans out to many NOTIFYs whose answers come back at once), and
/// the default buffer (about 200 KiB) drops them under load.
fn bind_udp(addr: SocketAddr, buffer: usize) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // The kernel caps both at net.core.{r,w}mem_max; that is not an error.
    let _ = socket.set_recv_buffer_size(buffer);
    let _ = socket.set_send_buffer_size(buffer);
    let got = socket.recv_buffer_size().unwrap_or(0);
    // Linux reports twice the usable size (bookkeeping overhead).
    if got / 2 < buffer {
        tracing::warn!(
            requested = buffer,
            granted = got / 2,
            "UDP receive buffer capped by the kernel; raise net.core.rmem_max for bursty load"
        );
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

async fn stop_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
    shutdown.cancel();
}
