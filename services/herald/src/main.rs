//! The `herald` binary: reads the configuration, binds sockets, and runs
//! the roles asked for. All protocol logic lives in the role crates.

mod config;
mod documents;
mod health;
mod roles;
mod users;

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use config::{Cli, Config, Role};
use edge::Listeners;

/// jemalloc instead of glibc's malloc: it gives memory freed after a load
/// back to the system and packs the many small allocations of held
/// subscriptions tighter (docs/decisions/0016-allocator.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// What the allocator holds, as gauges read at each collection: live bytes
/// (what the process's state takes, the figure comparable with Kamailio's
/// shared-memory `real_used`), the pages they occupy, and the pages
/// resident. The gap between the first two is fragmentation.
fn allocator_gauges() {
    use tikv_jemalloc_ctl::{epoch, stats};
    let m = telemetry::metrics();
    type Read = fn() -> tikv_jemalloc_ctl::Result<usize>;
    let gauges: [(&str, &str, Read); 3] = [
        (
            "herald.memory.allocated",
            "Bytes allocated by the process and not freed (jemalloc stats.allocated)",
            stats::allocated::read,
        ),
        (
            "herald.memory.active",
            "Bytes in pages holding allocations (jemalloc stats.active)",
            stats::active::read,
        ),
        (
            "herald.memory.resident",
            "Bytes of the allocator's pages resident in memory (jemalloc stats.resident)",
            stats::resident::read,
        ),
    ];
    for (name, description, read) in gauges {
        m.gauge(name, description, move || {
            // The counters are cached until the epoch advances.
            let _ = epoch::advance();
            read().map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX))
        });
    }
}

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
    let role = cli.role.unwrap_or(Role::All);
    // One crypto provider for the whole process, before anything builds a
    // TLS configuration (STACK.md: a second provider pulled in by another
    // crate would otherwise make rustls's builder panic). An error only
    // says one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = config.worker_threads {
        builder.worker_threads(n);
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("herald: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Logs, traces and metrics; inside the runtime, since the OTLP
    // exporter's gRPC connection lives on it.
    let telemetry = {
        let _runtime = runtime.enter();
        match telemetry::init(&telemetry_config(&role, &config)) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("herald: {e}");
                return ExitCode::from(64);
            }
        }
    };
    health::set_metrics(telemetry.prometheus());
    allocator_gauges();
    let result = runtime.block_on(async {
        match role {
            Role::All => roles::all(config).await,
            Role::Edge => roles::edge(config).await,
            Role::Presence => roles::presence(config).await,
            Role::Messaging => roles::messaging(config).await,
            Role::User { action } => users::run(config, action).await,
            Role::Xcap => roles::xcap(config).await,
        }
    });
    // Flush what is batched while the runtime still runs the exporters.
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Telemetry for this process: `service.name` by role, Prometheus kept
/// when there is a health endpoint to serve `/metrics` on.
fn telemetry_config(role: &Role, config: &Config) -> telemetry::TelemetryConfig {
    let service_name = match role {
        Role::All => "herald",
        Role::Edge => "herald-edge",
        Role::Presence => "herald-presence",
        Role::Messaging => "herald-messaging",
        Role::Xcap => "herald-xcap",
        Role::User { .. } => "herald-user",
    };
    telemetry::TelemetryConfig {
        service_name: service_name.into(),
        otlp_endpoint: config.otlp_endpoint.clone(),
        prometheus: config.health_listen.is_some(),
        log_filter: config.log.clone(),
    }
}

/// Binds UDP then TCP on the same port for each address. With port 0 the
/// port UDP got is taken for TCP too, retrying if TCP finds it in use.
pub(crate) async fn bind(addrs: &[SocketAddr], udp_buffer: usize) -> anyhow::Result<Listeners> {
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

pub(crate) async fn stop_on_signal(shutdown: CancellationToken, readiness: health::Readiness) {
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
    // Readiness goes false first, so probes move traffic away while
    // accepted requests are still answered.
    readiness.set(false);
    shutdown.cancel();
}
