//! Herald's configuration: one typed struct, read once at start from an
//! optional TOML file, then environment variables (`HERALD_*`), then
//! command-line flags, each overriding the one before.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(
    name = "herald",
    version,
    about = "Herald: a SIP SIMPLE presence and instant-messaging server",
    long_about = "Herald: a SIP SIMPLE presence and instant-messaging server.\n\n\
        With no arguments it runs every role in one process with an in-memory store,\n\
        listening for SIP on 127.0.0.1:5060 over UDP and TCP, serving any domain it is\n\
        asked for, without authentication.\n\n\
        Every option can also be set by an environment variable (shown below) or in a\n\
        TOML file given with --config (keys are the long option names with '_' for '-')."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) role: Option<Role>,
    #[command(flatten)]
    pub(crate) options: Options,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Role {
    /// Every role in one process (the default): in-memory, or durable with --redis.
    All,
    /// A SIP edge: sockets and transactions; routes requests to the shards
    /// (--presence-shards, --messaging-shards) and serves deliveries on --grpc-listen.
    Edge,
    /// One presence shard (--shard-id of --presence-shards), state in --redis.
    Presence,
    /// One messaging shard (--shard-id of --messaging-shards), state in --redis.
    Messaging,
}

/// Options as given on the command line or in the environment; `None`
/// falls back to the file, then to the default.
#[derive(Debug, Args, Default)]
pub(crate) struct Options {
    /// TOML configuration file.
    #[arg(long, env = "HERALD_CONFIG", global = true)]
    pub(crate) config: Option<PathBuf>,
    /// Redis holding the state: redis://host:port, or redis+cluster://h1:p1,h2:p2.
    /// Without it `all` keeps state in memory; shards require it.
    #[arg(long, env = "HERALD_REDIS", global = true)]
    pub(crate) redis: Option<String>,
    /// gRPC listen address of an edge or shard (port 0 picks one).
    #[arg(long, env = "HERALD_GRPC_LISTEN", global = true)]
    pub(crate) grpc_listen: Option<SocketAddr>,
    /// The URL other roles reach this process's gRPC at (default: http://<grpc-listen>).
    #[arg(long, env = "HERALD_PUBLIC_GRPC", global = true)]
    pub(crate) public_grpc: Option<String>,
    /// This shard's ordinal in its shard list.
    #[arg(long, env = "HERALD_SHARD_ID", global = true)]
    pub(crate) shard_id: Option<u32>,
    /// The presence shards' gRPC URLs, in ordinal order.
    #[arg(
        long,
        env = "HERALD_PRESENCE_SHARDS",
        value_delimiter = ',',
        global = true
    )]
    pub(crate) presence_shards: Vec<String>,
    /// The messaging shards' gRPC URLs, in ordinal order.
    #[arg(
        long,
        env = "HERALD_MESSAGING_SHARDS",
        value_delimiter = ',',
        global = true
    )]
    pub(crate) messaging_shards: Vec<String>,
    /// Every edge's gRPC URL, for shards to reach clients through another
    /// edge when the client's own edge is gone.
    #[arg(long, env = "HERALD_EDGES", value_delimiter = ',', global = true)]
    pub(crate) edges: Vec<String>,
    /// SIP over WebSocket (RFC 7118) listen address; repeat for more. Default:
    /// the first SIP address's host on port 5066 when SIP is on 5060 (any
    /// free port when SIP's is 0); `none` turns WebSocket off.
    #[arg(long, env = "HERALD_WS_LISTEN", value_delimiter = ',', global = true)]
    pub(crate) ws_listen: Vec<String>,
    /// WebSocket keep-alive ping interval, seconds (a client silent for two
    /// intervals is dropped); 0 turns it off.
    #[arg(long, env = "HERALD_WS_PING_INTERVAL", global = true)]
    pub(crate) ws_ping_interval: Option<u64>,
    /// HTTP address for /healthz and /readyz (none by default).
    #[arg(long, env = "HERALD_HEALTH_LISTEN", global = true)]
    pub(crate) health_listen: Option<SocketAddr>,
    /// On SIGTERM, seconds requests already accepted may take to be answered.
    #[arg(long, env = "HERALD_DRAIN_TIMEOUT", global = true)]
    pub(crate) drain_timeout: Option<u64>,
    /// SIP listen address, UDP and TCP on the same port; repeat for more.
    /// Port 0 picks a free port.
    #[arg(long, env = "HERALD_SIP_LISTEN", value_delimiter = ',', global = true)]
    pub(crate) sip_listen: Vec<SocketAddr>,
    /// Serve only these SIP domains (repeat, or comma-separated). Default: any.
    #[arg(long, env = "HERALD_DOMAIN", value_delimiter = ',', global = true)]
    pub(crate) domain: Vec<String>,
    /// Host[:port] to put in Via of requests Herald sends, when the listen
    /// address is not what clients reach.
    #[arg(long, env = "HERALD_ADVERTISE", global = true)]
    pub(crate) advertise: Option<String>,
    /// Provisioned users (AORs such as alice@example.com); when set, others get 404.
    #[arg(
        long = "user",
        env = "HERALD_USERS",
        value_delimiter = ',',
        global = true
    )]
    pub(crate) users: Vec<String>,
    /// Shortest registration accepted, seconds (423 below it).
    #[arg(long, env = "HERALD_MIN_EXPIRES", global = true)]
    pub(crate) min_expires: Option<u32>,
    /// Longest registration granted, seconds (longer ones are shortened).
    #[arg(long, env = "HERALD_MAX_EXPIRES", global = true)]
    pub(crate) max_expires: Option<u32>,
    /// Registration time when the client names none, seconds.
    #[arg(long, env = "HERALD_DEFAULT_EXPIRES", global = true)]
    pub(crate) default_expires: Option<u32>,
    /// Contacts one address of record may register.
    #[arg(long, env = "HERALD_MAX_CONTACTS", global = true)]
    pub(crate) max_contacts: Option<usize>,
    /// Largest SIP message accepted, bytes.
    #[arg(long, env = "HERALD_MAX_MESSAGE_SIZE", global = true)]
    pub(crate) max_message_size: Option<usize>,
    /// Largest SIP body accepted, bytes (413 above it).
    #[arg(long, env = "HERALD_MAX_BODY_SIZE", global = true)]
    pub(crate) max_body_size: Option<usize>,
    /// UDP socket receive and send buffer, bytes. Bursts larger than the
    /// buffer are dropped by the kernel and cost clients a retransmission;
    /// the kernel caps it at net.core.rmem_max / wmem_max.
    #[arg(long, env = "HERALD_UDP_BUFFER", global = true)]
    pub(crate) udp_buffer: Option<usize>,
    /// SIP timer T1 in milliseconds (RFC 3261 §17; retransmissions and timeouts scale with it).
    #[arg(long, env = "HERALD_TIMER_T1_MS", global = true)]
    pub timer_t1_ms: Option<u64>,
    /// How long a MESSAGE waits for a recipient's answer before it is stored, seconds.
    #[arg(long, env = "HERALD_DELIVERY_TIMEOUT", global = true)]
    pub(crate) delivery_timeout: Option<u64>,
    /// How long a stored MESSAGE waits for its recipient, seconds.
    #[arg(long, env = "HERALD_OFFLINE_TTL", global = true)]
    pub(crate) offline_ttl: Option<u64>,
    /// Stored MESSAGEs per recipient (486 past it).
    #[arg(long, env = "HERALD_OFFLINE_MAX", global = true)]
    pub(crate) offline_max: Option<usize>,
    /// Shortest PUBLISH expiry accepted, seconds (423 below it).
    #[arg(long, env = "HERALD_PUBLISH_MIN_EXPIRES", global = true)]
    pub(crate) publish_min_expires: Option<u32>,
    /// Longest PUBLISH expiry granted, seconds.
    #[arg(long, env = "HERALD_PUBLISH_MAX_EXPIRES", global = true)]
    pub(crate) publish_max_expires: Option<u32>,
    /// Shortest SUBSCRIBE expiry accepted, seconds (423 below it).
    #[arg(long, env = "HERALD_SUBSCRIBE_MIN_EXPIRES", global = true)]
    pub(crate) subscribe_min_expires: Option<u32>,
    /// Longest SUBSCRIBE expiry granted, seconds.
    #[arg(long, env = "HERALD_SUBSCRIBE_MAX_EXPIRES", global = true)]
    pub(crate) subscribe_max_expires: Option<u32>,
    /// Who may watch a presentity when no rule says: allow, or confirm (pending until allowed).
    #[arg(long, env = "HERALD_PRESENCE_POLICY", global = true)]
    pub(crate) presence_policy: Option<PolicyName>,
    /// What happens to publications made over a TCP connection when it closes: expire or keep.
    #[arg(long, env = "HERALD_PUBLICATION_ON_CLOSE", global = true)]
    pub(crate) publication_on_close: Option<OnClose>,
    /// Live publications one presentity may have.
    #[arg(long, env = "HERALD_MAX_PUBLICATIONS", global = true)]
    pub(crate) max_publications: Option<usize>,
    /// Subscriptions one presentity may have.
    #[arg(long, env = "HERALD_MAX_WATCHERS", global = true)]
    pub(crate) max_watchers: Option<usize>,
    /// Changes queued per watcher while its NOTIFYs are in flight; past it they fold into one.
    #[arg(long, env = "HERALD_NOTIFY_QUEUE", global = true)]
    pub(crate) notify_queue: Option<usize>,
    /// Server/User-Agent header value; empty sends none.
    #[arg(long, env = "HERALD_SERVER_HEADER", global = true)]
    pub(crate) server_header: Option<String>,
    /// Log filter (tracing syntax), e.g. info or herald=debug,edge=debug.
    #[arg(long, env = "HERALD_LOG", global = true)]
    pub(crate) log: Option<String>,
    /// OpenTelemetry collector to export traces and metrics to over OTLP/gRPC,
    /// e.g. http://127.0.0.1:4317. Nothing is exported without it (or the
    /// standard OTEL_EXPORTER_OTLP_ENDPOINT).
    #[arg(long, env = "HERALD_OTLP_ENDPOINT", global = true)]
    pub(crate) otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PolicyName {
    Allow,
    Confirm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OnClose {
    Expire,
    Keep,
}

/// The file form: every key optional.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct FileConfig {
    ws_ping_interval: Option<u64>,
    ws_listen: Option<Vec<String>>,
    health_listen: Option<SocketAddr>,
    drain_timeout: Option<u64>,
    redis: Option<String>,
    grpc_listen: Option<SocketAddr>,
    public_grpc: Option<String>,
    shard_id: Option<u32>,
    presence_shards: Option<Vec<String>>,
    messaging_shards: Option<Vec<String>>,
    edges: Option<Vec<String>>,
    sip_listen: Option<Vec<SocketAddr>>,
    domain: Option<Vec<String>>,
    advertise: Option<String>,
    users: Option<Vec<String>>,
    min_expires: Option<u32>,
    max_expires: Option<u32>,
    default_expires: Option<u32>,
    max_contacts: Option<usize>,
    max_message_size: Option<usize>,
    max_body_size: Option<usize>,
    timer_t1_ms: Option<u64>,
    udp_buffer: Option<usize>,
    delivery_timeout: Option<u64>,
    offline_ttl: Option<u64>,
    offline_max: Option<usize>,
    publish_min_expires: Option<u32>,
    publish_max_expires: Option<u32>,
    subscribe_min_expires: Option<u32>,
    subscribe_max_expires: Option<u32>,
    presence_policy: Option<PolicyName>,
    publication_on_close: Option<OnClose>,
    max_publications: Option<usize>,
    max_watchers: Option<usize>,
    notify_queue: Option<usize>,
    server_header: Option<String>,
    log: Option<String>,
    otlp_endpoint: Option<String>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) ws_ping_interval: u64,
    pub(crate) ws_listen: Vec<SocketAddr>,
    pub(crate) health_listen: Option<SocketAddr>,
    pub(crate) drain_timeout: u64,
    pub(crate) redis: Option<String>,
    pub(crate) grpc_listen: Option<SocketAddr>,
    pub(crate) public_grpc: Option<String>,
    pub(crate) shard_id: Option<u32>,
    pub(crate) presence_shards: Vec<String>,
    pub(crate) messaging_shards: Vec<String>,
    pub(crate) edges: Vec<String>,
    pub(crate) sip_listen: Vec<SocketAddr>,
    pub(crate) domains: Vec<String>,
    pub(crate) advertise: Option<String>,
    pub(crate) users: Vec<String>,
    pub(crate) min_expires: u32,
    pub(crate) max_expires: u32,
    pub(crate) default_expires: u32,
    pub(crate) max_contacts: usize,
    pub(crate) max_message_size: usize,
    pub(crate) max_body_size: usize,
    pub timer_t1_ms: u64,
    pub udp_buffer: usize,
    pub(crate) delivery_timeout: u64,
    pub(crate) offline_ttl: u64,
    pub(crate) offline_max: usize,
    pub(crate) publish_min_expires: u32,
    pub(crate) publish_max_expires: u32,
    pub(crate) subscribe_min_expires: u32,
    pub(crate) subscribe_max_expires: u32,
    pub(crate) presence_policy: PolicyName,
    pub(crate) publication_on_close: OnClose,
    pub(crate) max_publications: usize,
    pub(crate) max_watchers: usize,
    pub(crate) notify_queue: usize,
    pub(crate) server_header: Option<String>,
    pub(crate) log: String,
    pub(crate) otlp_endpoint: Option<String>,
}

impl Config {
    pub(crate) fn resolve(o: Options) -> anyhow::Result<Config> {
        let file: FileConfig = match &o.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                toml::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("bad configuration in {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        fn list<T>(cli: Vec<T>, file: Option<Vec<T>>, default: Vec<T>) -> Vec<T> {
            if !cli.is_empty() {
                cli
            } else {
                file.unwrap_or(default)
            }
        }
        let sip_listen = list(
            o.sip_listen,
            file.sip_listen,
            vec![SocketAddr::from(([127, 0, 0, 1], 5060))],
        );
        let ws_listen = match list(o.ws_listen, file.ws_listen, vec![]) {
            ws if ws.is_empty() => match sip_listen.first() {
                // RFC 7118 has no default port; 5066 is the common one.
                Some(sip) if sip.port() == 5060 => vec![SocketAddr::new(sip.ip(), 5066)],
                Some(sip) if sip.port() == 0 => vec![SocketAddr::new(sip.ip(), 0)],
                _ => vec![],
            },
            ws if ws.iter().any(|w| w.eq_ignore_ascii_case("none")) => vec![],
            ws => ws
                .iter()
                .map(|w| {
                    w.parse::<SocketAddr>()
                        .map_err(|e| anyhow::anyhow!("bad --ws-listen {w}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        };
        let config = Config {
            ws_ping_interval: o.ws_ping_interval.or(file.ws_ping_interval).unwrap_or(30),
            ws_listen,
            health_listen: o.health_listen.or(file.health_listen),
            drain_timeout: o.drain_timeout.or(file.drain_timeout).unwrap_or(10),
            redis: o.redis.or(file.redis),
            grpc_listen: o.grpc_listen.or(file.grpc_listen),
            public_grpc: o.public_grpc.or(file.public_grpc),
            shard_id: o.shard_id.or(file.shard_id),
            presence_shards: list(o.presence_shards, file.presence_shards, vec![]),
            messaging_shards: list(o.messaging_shards, file.messaging_shards, vec![]),
            edges: list(o.edges, file.edges, vec![]),
            sip_listen,
            domains: list(o.domain, file.domain, vec![]),
            advertise: o.advertise.or(file.advertise),
            users: list(o.users, file.users, vec![]),
            min_expires: o.min_expires.or(file.min_expires).unwrap_or(60),
            max_expires: o.max_expires.or(file.max_expires).unwrap_or(3600),
            default_expires: o.default_expires.or(file.default_expires).unwrap_or(3600),
            max_contacts: o.max_contacts.or(file.max_contacts).unwrap_or(10),
            max_message_size: o
                .max_message_size
                .or(file.max_message_size)
                .unwrap_or(65_535),
            max_body_size: o.max_body_size.or(file.max_body_size).unwrap_or(60_000),
            timer_t1_ms: o.timer_t1_ms.or(file.timer_t1_ms).unwrap_or(500),
            udp_buffer: o.udp_buffer.or(file.udp_buffer).unwrap_or(4 << 20),
            delivery_timeout: o.delivery_timeout.or(file.delivery_timeout).unwrap_or(10),
            offline_ttl: o.offline_ttl.or(file.offline_ttl).unwrap_or(7 * 24 * 3600),
            offline_max: o.offline_max.or(file.offline_max).unwrap_or(100),
            publish_min_expires: o
                .publish_min_expires
                .or(file.publish_min_expires)
                .unwrap_or(60),
            publish_max_expires: o
                .publish_max_expires
                .or(file.publish_max_expires)
                .unwrap_or(3600),
            subscribe_min_expires: o
                .subscribe_min_expires
                .or(file.subscribe_min_expires)
                .unwrap_or(60),
            subscribe_max_expires: o
                .subscribe_max_expires
                .or(file.subscribe_max_expires)
                .unwrap_or(3600),
            presence_policy: o
                .presence_policy
                .or(file.presence_policy)
                .unwrap_or(PolicyName::Allow),
            publication_on_close: o
                .publication_on_close
                .or(file.publication_on_close)
                .unwrap_or(OnClose::Expire),
            max_publications: o.max_publications.or(file.max_publications).unwrap_or(32),
            max_watchers: o.max_watchers.or(file.max_watchers).unwrap_or(1000),
            notify_queue: o.notify_queue.or(file.notify_queue).unwrap_or(16),
            server_header: match o.server_header.or(file.server_header) {
                Some(s) if s.is_empty() => None,
                Some(s) => Some(s),
                None => Some("Herald".into()),
            },
            log: o.log.or(file.log).unwrap_or_else(|| "info".into()),
            otlp_endpoint: o
                .otlp_endpoint
                .or(file.otlp_endpoint)
                .filter(|e| !e.is_empty()),
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.sip_listen.is_empty(), "no SIP listen address");
        anyhow::ensure!(
            self.min_expires <= self.default_expires && self.default_expires <= self.max_expires,
            "need min-expires <= default-expires <= max-expires"
        );
        anyhow::ensure!(self.timer_t1_ms > 0, "timer-t1-ms must be positive");
        if let Some(e) = &self.otlp_endpoint {
            anyhow::ensure!(
                e.starts_with("http://") || e.starts_with("https://"),
                "otlp-endpoint must be an http:// or https:// URL, got {e}"
            );
        }
        anyhow::ensure!(
            self.max_body_size <= self.max_message_size,
            "max-body-size must not exceed max-message-size"
        );
        anyhow::ensure!(self.max_contacts > 0, "max-contacts must be positive");
        anyhow::ensure!(self.offline_max > 0, "offline-max must be positive");
        anyhow::ensure!(self.notify_queue > 0, "notify-queue must be positive");
        anyhow::ensure!(
            self.publish_min_expires <= self.publish_max_expires,
            "need publish-min-expires <= publish-max-expires"
        );
        anyhow::ensure!(
            self.subscribe_min_expires <= self.subscribe_max_expires,
            "need subscribe-min-expires <= subscribe-max-expires"
        );
        anyhow::ensure!(
            self.publish_max_expires > 0 && self.subscribe_max_expires > 0,
            "maximum expiries must be positive"
        );
        Ok(())
    }
}
