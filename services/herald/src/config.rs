//! Herald's configuration: one typed struct, read once at start from an
//! optional TOML file, then environment variables (`HERALD_*`), then
//! command-line flags, each overriding the one before.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use shard::ShardListSpec;

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
    /// An XCAP server (RFC 4825) on --xcap-listen, documents in --redis.
    Xcap,
    /// Digest credentials: in Redis with --redis, else in the --credentials file.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserAction {
    /// Sets the password of an AOR (alice@example.com) for --realm (default:
    /// the AOR's domain); only its HA1 hashes are stored.
    Add {
        aor: String,
        /// Read the password from the first line of standard input.
        #[arg(long, conflicts_with = "password")]
        password_stdin: bool,
        /// The password (visible to other local users in the process list:
        /// prefer --password-stdin).
        #[arg(long)]
        password: Option<String>,
    },
    /// Deletes every credential of an AOR.
    Del { aor: String },
    /// Lists AORs with credentials, one `aor realm` line per credential.
    List,
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
    /// This shard's ordinal in its shard list. With a dns+srv: list it
    /// defaults to the ordinal at the end of the host name (a StatefulSet
    /// pod's `herald-presence-2` is 2).
    #[arg(long, env = "HERALD_SHARD_ID", global = true)]
    pub(crate) shard_id: Option<u32>,
    /// The presence shards' gRPC URLs, in ordinal order; or
    /// dns+srv:NAME, the SRV records of a Kubernetes headless service
    /// (dns+srv:_grpc._tcp.herald-presence.herald.svc.cluster.local),
    /// ordered by the StatefulSet ordinal of each target and re-read every
    /// --shard-dns-interval.
    #[arg(
        long,
        env = "HERALD_PRESENCE_SHARDS",
        value_delimiter = ',',
        global = true
    )]
    pub(crate) presence_shards: Vec<String>,
    /// The messaging shards' gRPC URLs, in ordinal order; or dns+srv:NAME
    /// as --presence-shards.
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
    /// Seconds between readings of dns+srv: shard lists (default 5). A
    /// shard refusing a request as not its owner makes an edge read them at
    /// once too.
    #[arg(long, env = "HERALD_SHARD_DNS_INTERVAL", global = true)]
    pub(crate) shard_dns_interval: Option<u64>,
    /// DNS server (ip:port) asked for dns+srv: shard lists. Default: the
    /// system's (/etc/resolv.conf).
    #[arg(long, env = "HERALD_DNS_SERVER", global = true)]
    pub(crate) dns_server: Option<SocketAddr>,
    /// SIP over WebSocket (RFC 7118) listen address; repeat for more. Default:
    /// the first SIP address's host on port 5066 when SIP is on 5060 (any
    /// free port when SIP's is 0); `none` turns WebSocket off.
    #[arg(long, env = "HERALD_WS_LISTEN", value_delimiter = ',', global = true)]
    pub(crate) ws_listen: Vec<String>,
    /// SIP over TLS listen address; repeat for more. Default (only with a
    /// certificate): the first SIP address's host on port 5061 when SIP is
    /// on 5060 (any free port when SIP's is 0); `none` turns TLS off.
    #[arg(long, env = "HERALD_TLS_LISTEN", value_delimiter = ',', global = true)]
    pub(crate) tls_listen: Vec<String>,
    /// SIP over secure WebSocket listen address; repeat for more. Default
    /// (only with a certificate): the first SIP address's host on port 7443
    /// when SIP is on 5060 (any free port when SIP's is 0); `none` turns WSS off.
    #[arg(long, env = "HERALD_WSS_LISTEN", value_delimiter = ',', global = true)]
    pub(crate) wss_listen: Vec<String>,
    /// TLS certificate chain (PEM, leaf first); re-read when it changes.
    /// TLS and WSS listen only when a certificate is given.
    #[arg(long, env = "HERALD_TLS_CERT", global = true)]
    pub(crate) tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of --tls-cert.
    #[arg(long, env = "HERALD_TLS_KEY", global = true)]
    pub(crate) tls_key: Option<PathBuf>,
    /// How often the certificate files are checked for a change, seconds.
    #[arg(long, env = "HERALD_TLS_RELOAD_INTERVAL", global = true)]
    pub(crate) tls_reload_interval: Option<u64>,
    /// How long a TLS or WSS client may take to finish its handshake, seconds.
    #[arg(long, env = "HERALD_TLS_HANDSHAKE_TIMEOUT", global = true)]
    pub(crate) tls_handshake_timeout: Option<u64>,
    /// WebSocket keep-alive ping interval, seconds (a client silent for two
    /// intervals is dropped); 0 turns it off.
    #[arg(long, env = "HERALD_WS_PING_INTERVAL", global = true)]
    pub(crate) ws_ping_interval: Option<u64>,
    /// XCAP (HTTP) listen address of `all` and `xcap`. Default: the first SIP
    /// address's host on port 8080 when SIP is on 5060 (any free port when
    /// SIP's is 0); `none` turns XCAP off in `all`.
    #[arg(long, env = "HERALD_XCAP_LISTEN", global = true)]
    pub(crate) xcap_listen: Option<String>,
    /// Path of the XCAP root (RFC 4825 §6.1).
    #[arg(long, env = "HERALD_XCAP_ROOT", global = true)]
    pub(crate) xcap_root: Option<String>,
    /// The XCAP root URL clients use (http://xcap.example.com/xcap-root),
    /// named in xcap-diff NOTIFYs (RFC 5874). Default: from --xcap-listen
    /// (or --advertise) and --xcap-root.
    #[arg(long, env = "HERALD_XCAP_URL", global = true)]
    pub(crate) xcap_url: Option<String>,
    /// Largest XCAP document (and request body), bytes; larger ones get 413.
    #[arg(long, env = "HERALD_XCAP_MAX_DOCUMENT_SIZE", global = true)]
    pub(crate) xcap_max_document_size: Option<usize>,
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
    /// Largest SIP message over UDP, bytes (default: --max-message-size).
    #[arg(long, env = "HERALD_MAX_UDP_MESSAGE_SIZE", global = true)]
    pub(crate) max_udp_message_size: Option<usize>,
    /// Largest SIP message over TCP and TLS, bytes (default: --max-message-size);
    /// 413 when its head can be read, then the connection is closed.
    #[arg(long, env = "HERALD_MAX_TCP_MESSAGE_SIZE", global = true)]
    pub(crate) max_tcp_message_size: Option<usize>,
    /// Largest SIP message in a WebSocket frame, bytes (default:
    /// --max-message-size); 413 up to twice this, a closed connection past it.
    #[arg(long, env = "HERALD_MAX_WS_MESSAGE_SIZE", global = true)]
    pub(crate) max_ws_message_size: Option<usize>,
    /// Connections (TCP, TLS, WebSocket together) one IP address may hold
    /// open; more are closed at once. 0: no limit.
    #[arg(long, env = "HERALD_MAX_CONNECTIONS_PER_IP", global = true)]
    pub(crate) max_connections_per_ip: Option<usize>,
    /// Requests per second from one IP address (an IPv6 /64), bursts of 4 s
    /// allowed; past it 503 with Retry-After, and over UDP past twice it
    /// silence. 0: no limit.
    #[arg(long, env = "HERALD_MAX_REQUESTS_PER_IP", global = true)]
    pub(crate) max_requests_per_ip: Option<u32>,
    /// Requests per second from one user (From address of record), bursts
    /// of 4 s allowed; past it as --max-requests-per-ip. 0: no limit.
    #[arg(long, env = "HERALD_MAX_REQUESTS_PER_USER", global = true)]
    pub(crate) max_requests_per_user: Option<u32>,
    /// UDP socket receive and send buffer, bytes. Bursts larger than the
    /// buffer are dropped by the kernel and cost clients a retransmission;
    /// the kernel caps it at net.core.rmem_max / wmem_max.
    #[arg(long, env = "HERALD_UDP_BUFFER", global = true)]
    pub(crate) udp_buffer: Option<usize>,
    /// Runtime worker threads; default one per CPU the process may use.
    /// Several roles sharing a few cores (one host, small pods) spend less
    /// on waking each other's threads with 1.
    #[arg(long, env = "HERALD_WORKER_THREADS", global = true)]
    pub(crate) worker_threads: Option<usize>,
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
    /// Subscriptions one watcher may hold, to every presentity together (403 past it).
    #[arg(long, env = "HERALD_MAX_SUBSCRIPTIONS_PER_WATCHER", global = true)]
    pub(crate) max_subscriptions_per_watcher: Option<usize>,
    /// Changes queued per watcher while its NOTIFYs are in flight; past it they fold into one.
    #[arg(long, env = "HERALD_NOTIFY_QUEUE", global = true)]
    pub(crate) notify_queue: Option<usize>,
    /// Server/User-Agent header value; empty sends none.
    #[arg(long, env = "HERALD_SERVER_HEADER", global = true)]
    pub(crate) server_header: Option<String>,
    /// Log filter (tracing syntax), e.g. info or herald=debug,edge=debug.
    #[arg(long, env = "HERALD_LOG", global = true)]
    pub(crate) log: Option<String>,
    /// Digest realm; when set, REGISTER, PUBLISH, SUBSCRIBE and MESSAGE must
    /// authenticate (RFC 3261 §22, MD5 and SHA-256).
    #[arg(long, env = "HERALD_REALM", global = true)]
    pub(crate) realm: Option<String>,
    /// Secret signing nonces, the same on every edge so a nonce from one is
    /// good on all. Default: random per process (nonces then do not survive
    /// a restart or move between edges).
    #[arg(
        long,
        env = "HERALD_NONCE_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub(crate) nonce_secret: Option<String>,
    /// Seconds a nonce is good for; older ones are challenged again with stale=true.
    #[arg(long, env = "HERALD_NONCE_LIFETIME", global = true)]
    pub(crate) nonce_lifetime: Option<u64>,
    /// Failed digest answers from one address (or for one user from it)
    /// within --auth-failure-window before it is refused for --auth-backoff.
    #[arg(long, env = "HERALD_AUTH_MAX_FAILURES", global = true)]
    pub(crate) auth_max_failures: Option<u32>,
    /// Seconds failed answers are counted over.
    #[arg(long, env = "HERALD_AUTH_FAILURE_WINDOW", global = true)]
    pub(crate) auth_failure_window: Option<u64>,
    /// Seconds an address past --auth-max-failures is refused (403, Retry-After).
    #[arg(long, env = "HERALD_AUTH_BACKOFF", global = true)]
    pub(crate) auth_backoff: Option<u64>,
    /// TOML file of digest credentials (HA1 hashes) that `herald user` writes
    /// and `herald all`/`edge` load into their store at start: the way to
    /// manage users of the in-memory default.
    #[arg(long, env = "HERALD_CREDENTIALS", global = true)]
    pub(crate) credentials: Option<PathBuf>,
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
    xcap_listen: Option<String>,
    xcap_root: Option<String>,
    xcap_url: Option<String>,
    xcap_max_document_size: Option<usize>,
    tls_listen: Option<Vec<String>>,
    wss_listen: Option<Vec<String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_reload_interval: Option<u64>,
    tls_handshake_timeout: Option<u64>,
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
    shard_dns_interval: Option<u64>,
    dns_server: Option<SocketAddr>,
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
    max_udp_message_size: Option<usize>,
    max_tcp_message_size: Option<usize>,
    max_ws_message_size: Option<usize>,
    max_connections_per_ip: Option<usize>,
    max_requests_per_ip: Option<u32>,
    max_requests_per_user: Option<u32>,
    timer_t1_ms: Option<u64>,
    udp_buffer: Option<usize>,
    worker_threads: Option<usize>,
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
    max_subscriptions_per_watcher: Option<usize>,
    notify_queue: Option<usize>,
    server_header: Option<String>,
    log: Option<String>,
    realm: Option<String>,
    nonce_secret: Option<String>,
    nonce_lifetime: Option<u64>,
    auth_max_failures: Option<u32>,
    auth_failure_window: Option<u64>,
    auth_backoff: Option<u64>,
    credentials: Option<PathBuf>,
    otlp_endpoint: Option<String>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// `None`: XCAP is off.
    pub(crate) xcap_listen: Option<SocketAddr>,
    pub(crate) xcap_root: String,
    pub(crate) xcap_url_given: Option<String>,
    pub(crate) xcap_max_document_size: usize,
    pub(crate) tls_listen: Vec<SocketAddr>,
    pub(crate) wss_listen: Vec<SocketAddr>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    pub(crate) tls_reload_interval: u64,
    pub(crate) tls_handshake_timeout: u64,
    pub(crate) ws_ping_interval: u64,
    pub(crate) ws_listen: Vec<SocketAddr>,
    pub(crate) health_listen: Option<SocketAddr>,
    pub(crate) drain_timeout: u64,
    pub(crate) redis: Option<String>,
    pub(crate) grpc_listen: Option<SocketAddr>,
    pub(crate) public_grpc: Option<String>,
    pub(crate) shard_id: Option<u32>,
    pub(crate) presence_shards: ShardListSpec,
    pub(crate) messaging_shards: ShardListSpec,
    pub(crate) shard_dns_interval: u64,
    pub(crate) dns_server: Option<SocketAddr>,
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
    pub(crate) max_udp_message_size: usize,
    pub(crate) max_tcp_message_size: usize,
    pub(crate) max_ws_message_size: usize,
    pub(crate) max_connections_per_ip: usize,
    pub(crate) max_requests_per_ip: u32,
    pub(crate) max_requests_per_user: u32,
    pub timer_t1_ms: u64,
    pub udp_buffer: usize,
    /// `None`: tokio's default (one per available CPU).
    pub worker_threads: Option<usize>,
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
    pub(crate) max_subscriptions_per_watcher: usize,
    pub(crate) notify_queue: usize,
    pub(crate) server_header: Option<String>,
    pub(crate) log: String,
    pub(crate) realm: Option<String>,
    pub(crate) nonce_secret: Option<String>,
    pub(crate) nonce_lifetime: u64,
    pub(crate) auth_max_failures: u32,
    pub(crate) auth_failure_window: u64,
    pub(crate) auth_backoff: u64,
    pub(crate) credentials: Option<PathBuf>,
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
        // RFC 7118 has no default port; 5066 is the common one.
        let ws_listen = derived_listen(
            "--ws-listen",
            list(o.ws_listen, file.ws_listen, vec![]),
            &sip_listen,
            5066,
        )?;
        let tls_cert = o.tls_cert.or(file.tls_cert);
        let tls_key = o.tls_key.or(file.tls_key);
        let tls_given = list(o.tls_listen, file.tls_listen, vec![]);
        let wss_given = list(o.wss_listen, file.wss_listen, vec![]);
        // Without a certificate there is nothing to listen with: the
        // defaults are off, and an address given anyway is an error (below).
        let (tls_listen, wss_listen) = if tls_cert.is_some() {
            (
                // RFC 3261 §26.2: 5061 is SIP over TLS's port.
                derived_listen("--tls-listen", tls_given, &sip_listen, 5061)?,
                // RFC 7118 has no WSS port either; 7443 is a common one.
                derived_listen("--wss-listen", wss_given, &sip_listen, 7443)?,
            )
        } else {
            let none = |v: &[String]| v.iter().all(|a| a.eq_ignore_ascii_case("none"));
            anyhow::ensure!(
                none(&tls_given) && none(&wss_given),
                "--tls-listen and --wss-listen need --tls-cert and --tls-key"
            );
            (vec![], vec![])
        };
        let xcap_listen = match o.xcap_listen.or(file.xcap_listen) {
            None => match sip_listen.first() {
                Some(sip) if sip.port() == 5060 => Some(SocketAddr::new(sip.ip(), 8080)),
                Some(sip) if sip.port() == 0 => Some(SocketAddr::new(sip.ip(), 0)),
                _ => None,
            },
            Some(x) if x.eq_ignore_ascii_case("none") => None,
            Some(x) => Some(
                x.parse::<SocketAddr>()
                    .map_err(|e| anyhow::anyhow!("bad --xcap-listen {x}: {e}"))?,
            ),
        };
        let max_message_size = o
            .max_message_size
            .or(file.max_message_size)
            .unwrap_or(65_535);
        let flood = edge::FloodLimits::default();
        let config = Config {
            xcap_listen,
            xcap_url_given: o.xcap_url.or(file.xcap_url).filter(|u| !u.is_empty()),
            xcap_root: o
                .xcap_root
                .or(file.xcap_root)
                .unwrap_or_else(|| "/xcap-root".into()),
            xcap_max_document_size: o
                .xcap_max_document_size
                .or(file.xcap_max_document_size)
                .unwrap_or(xcap::DEFAULT_MAX_DOCUMENT_SIZE),
            tls_listen,
            wss_listen,
            tls_cert,
            tls_key,
            tls_reload_interval: o
                .tls_reload_interval
                .or(file.tls_reload_interval)
                .unwrap_or(10),
            tls_handshake_timeout: o
                .tls_handshake_timeout
                .or(file.tls_handshake_timeout)
                .unwrap_or(10),
            ws_ping_interval: o.ws_ping_interval.or(file.ws_ping_interval).unwrap_or(30),
            ws_listen,
            health_listen: o.health_listen.or(file.health_listen),
            drain_timeout: o.drain_timeout.or(file.drain_timeout).unwrap_or(10),
            redis: o.redis.or(file.redis),
            grpc_listen: o.grpc_listen.or(file.grpc_listen),
            public_grpc: o.public_grpc.or(file.public_grpc),
            shard_id: o.shard_id.or(file.shard_id),
            presence_shards: shard_list(
                "presence-shards",
                list(o.presence_shards, file.presence_shards, vec![]),
            )?,
            messaging_shards: shard_list(
                "messaging-shards",
                list(o.messaging_shards, file.messaging_shards, vec![]),
            )?,
            shard_dns_interval: o
                .shard_dns_interval
                .or(file.shard_dns_interval)
                .unwrap_or(5),
            dns_server: o.dns_server.or(file.dns_server),
            edges: list(o.edges, file.edges, vec![]),
            sip_listen,
            domains: list(o.domain, file.domain, vec![]),
            advertise: o.advertise.or(file.advertise),
            users: list(o.users, file.users, vec![]),
            min_expires: o.min_expires.or(file.min_expires).unwrap_or(60),
            max_expires: o.max_expires.or(file.max_expires).unwrap_or(3600),
            default_expires: o.default_expires.or(file.default_expires).unwrap_or(3600),
            max_contacts: o.max_contacts.or(file.max_contacts).unwrap_or(10),
            max_message_size,
            max_body_size: o.max_body_size.or(file.max_body_size).unwrap_or(60_000),
            max_udp_message_size: o
                .max_udp_message_size
                .or(file.max_udp_message_size)
                .unwrap_or(max_message_size),
            max_tcp_message_size: o
                .max_tcp_message_size
                .or(file.max_tcp_message_size)
                .unwrap_or(max_message_size),
            max_ws_message_size: o
                .max_ws_message_size
                .or(file.max_ws_message_size)
                .unwrap_or(max_message_size),
            max_connections_per_ip: o
                .max_connections_per_ip
                .or(file.max_connections_per_ip)
                .unwrap_or(flood.connections_per_ip),
            max_requests_per_ip: o
                .max_requests_per_ip
                .or(file.max_requests_per_ip)
                .unwrap_or(flood.requests_per_ip),
            max_requests_per_user: o
                .max_requests_per_user
                .or(file.max_requests_per_user)
                .unwrap_or(flood.requests_per_user),
            timer_t1_ms: o.timer_t1_ms.or(file.timer_t1_ms).unwrap_or(500),
            udp_buffer: o.udp_buffer.or(file.udp_buffer).unwrap_or(4 << 20),
            worker_threads: o.worker_threads.or(file.worker_threads).filter(|n| *n > 0),
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
            max_subscriptions_per_watcher: o
                .max_subscriptions_per_watcher
                .or(file.max_subscriptions_per_watcher)
                .unwrap_or(1000),
            notify_queue: o.notify_queue.or(file.notify_queue).unwrap_or(16),
            server_header: match o.server_header.or(file.server_header) {
                Some(s) if s.is_empty() => None,
                Some(s) => Some(s),
                None => Some("Herald".into()),
            },
            log: o.log.or(file.log).unwrap_or_else(|| "info".into()),
            realm: o.realm.or(file.realm).filter(|r| !r.is_empty()),
            nonce_secret: o
                .nonce_secret
                .or(file.nonce_secret)
                .filter(|s| !s.is_empty()),
            nonce_lifetime: o.nonce_lifetime.or(file.nonce_lifetime).unwrap_or(300),
            auth_max_failures: o.auth_max_failures.or(file.auth_max_failures).unwrap_or(5),
            auth_failure_window: o
                .auth_failure_window
                .or(file.auth_failure_window)
                .unwrap_or(60),
            auth_backoff: o.auth_backoff.or(file.auth_backoff).unwrap_or(300),
            credentials: o.credentials.or(file.credentials),
            otlp_endpoint: o
                .otlp_endpoint
                .or(file.otlp_endpoint)
                .filter(|e| !e.is_empty()),
        };
        config.validate()?;
        Ok(config)
    }

    /// The XCAP root URL clients use, ending in `/` (RFC 5874 §4 names
    /// documents relative to it).
    pub(crate) fn xcap_url(&self) -> String {
        let url = match &self.xcap_url_given {
            Some(u) => u.clone(),
            None => {
                let host = match (&self.advertise, self.xcap_listen) {
                    (Some(a), Some(l)) => {
                        format!("{}:{}", a.split(':').next().unwrap_or(a), l.port())
                    }
                    (_, Some(l)) => l.to_string(),
                    (Some(a), None) => format!("{}:8080", a.split(':').next().unwrap_or(a)),
                    (None, None) => "localhost:8080".into(),
                };
                format!("http://{host}{}", self.xcap_root)
            }
        };
        if url.ends_with('/') {
            url
        } else {
            format!("{url}/")
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.tls_cert.is_some() == self.tls_key.is_some(),
            "--tls-cert and --tls-key go together"
        );
        anyhow::ensure!(
            self.tls_reload_interval > 0 && self.tls_handshake_timeout > 0,
            "tls-reload-interval and tls-handshake-timeout must be positive"
        );
        anyhow::ensure!(!self.sip_listen.is_empty(), "no SIP listen address");
        anyhow::ensure!(
            self.xcap_root.starts_with('/') && !self.xcap_root.ends_with('/'),
            "xcap-root must start with / and not end with one"
        );
        anyhow::ensure!(
            self.xcap_max_document_size > 0,
            "xcap-max-document-size must be positive"
        );
        anyhow::ensure!(
            self.min_expires <= self.default_expires && self.default_expires <= self.max_expires,
            "need min-expires <= default-expires <= max-expires"
        );
        anyhow::ensure!(self.timer_t1_ms > 0, "timer-t1-ms must be positive");
        anyhow::ensure!(
            self.shard_dns_interval > 0,
            "shard-dns-interval must be positive"
        );
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
        for (name, size) in [
            ("max-udp-message-size", self.max_udp_message_size),
            ("max-tcp-message-size", self.max_tcp_message_size),
            ("max-ws-message-size", self.max_ws_message_size),
        ] {
            // A REGISTER or SUBSCRIBE with its usual headers fits in 1 KB;
            // less would refuse ordinary clients, not attackers.
            anyhow::ensure!(size >= 1024, "{name} must be at least 1024 bytes");
        }
        anyhow::ensure!(
            self.max_subscriptions_per_watcher > 0,
            "max-subscriptions-per-watcher must be positive"
        );
        anyhow::ensure!(self.max_contacts > 0, "max-contacts must be positive");
        anyhow::ensure!(self.offline_max > 0, "offline-max must be positive");
        anyhow::ensure!(self.notify_queue > 0, "notify-queue must be positive");
        anyhow::ensure!(self.nonce_lifetime > 0, "nonce-lifetime must be positive");
        anyhow::ensure!(
            self.auth_max_failures > 0,
            "auth-max-failures must be positive"
        );
        if let Some(realm) = &self.realm {
            anyhow::ensure!(
                !realm.contains(['"', '\\']) && !realm.chars().any(char::is_control),
                "realm must not contain quotes, backslashes or control characters"
            );
        }
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

/// A shard list flag: addresses, or one dns+srv:NAME.
fn shard_list(flag: &str, entries: Vec<String>) -> anyhow::Result<ShardListSpec> {
    ShardListSpec::parse(&entries).map_err(|e| anyhow::anyhow!("bad --{flag}: {e}"))
}

/// Listen addresses for a transport that defaults beside SIP: what was
/// given, or the first SIP address's host on `port` when SIP is on 5060
/// (any free port when SIP's is 0, as tests run), or none; `none` turns
/// the transport off.
fn derived_listen(
    flag: &str,
    given: Vec<String>,
    sip_listen: &[SocketAddr],
    port: u16,
) -> anyhow::Result<Vec<SocketAddr>> {
    if given.is_empty() {
        return Ok(match sip_listen.first() {
            Some(sip) if sip.port() == 5060 => vec![SocketAddr::new(sip.ip(), port)],
            Some(sip) if sip.port() == 0 => vec![SocketAddr::new(sip.ip(), 0)],
            _ => vec![],
        });
    }
    if given.iter().any(|a| a.eq_ignore_ascii_case("none")) {
        return Ok(vec![]);
    }
    given
        .iter()
        .map(|a| {
            a.parse::<SocketAddr>()
                .map_err(|e| anyhow::anyhow!("bad {flag} {a}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(args: &[&str]) -> anyhow::Result<Config> {
        let cli = Cli::try_parse_from(std::iter::once("herald").chain(args.iter().copied()))?;
        Config::resolve(cli.options)
    }

    #[test]
    fn worker_threads_default_to_the_runtimes_choice() -> anyhow::Result<()> {
        assert_eq!(resolve(&[])?.worker_threads, None);
        assert_eq!(resolve(&["--worker-threads", "1"])?.worker_threads, Some(1));
        // 0 would be a runtime that cannot run anything: the default instead.
        assert_eq!(resolve(&["--worker-threads", "0"])?.worker_threads, None);
        Ok(())
    }

    #[test]
    fn limits_come_from_file_environment_and_flags() -> anyhow::Result<()> {
        let path = std::env::temp_dir().join(format!("herald-limits-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "max_message_size = 8000\n\
             max_body_size = 6000\n\
             max_udp_message_size = 1500\n\
             max_connections_per_ip = 9\n\
             max_requests_per_ip = 11\n\
             max_requests_per_user = 12\n\
             max_subscriptions_per_watcher = 13\n",
        )?;
        // The only test here that sets the environment.
        std::env::set_var("HERALD_MAX_WS_MESSAGE_SIZE", "4000");
        let file = path.to_string_lossy().to_string();
        let c = resolve(&["--config", &file, "--max-requests-per-user", "5"]);
        std::env::remove_var("HERALD_MAX_WS_MESSAGE_SIZE");
        let _ = std::fs::remove_file(&path);
        let c = c?;
        assert_eq!(c.max_udp_message_size, 1500);
        // Unset per-transport sizes follow --max-message-size.
        assert_eq!(c.max_tcp_message_size, 8000);
        assert_eq!(c.max_ws_message_size, 4000);
        assert_eq!(c.max_connections_per_ip, 9);
        assert_eq!(c.max_requests_per_ip, 11);
        assert_eq!(c.max_requests_per_user, 5);
        assert_eq!(c.max_subscriptions_per_watcher, 13);
        Ok(())
    }

    #[test]
    fn limit_defaults_are_on_and_checked() -> anyhow::Result<()> {
        let c = resolve(&[])?;
        let flood = edge::FloodLimits::default();
        assert_eq!(c.max_requests_per_ip, flood.requests_per_ip);
        assert_eq!(c.max_requests_per_user, flood.requests_per_user);
        assert_eq!(c.max_connections_per_ip, flood.connections_per_ip);
        assert!(c.max_requests_per_ip > 0 && c.max_connections_per_ip > 0);
        assert_eq!(c.max_udp_message_size, 65_535);
        assert!(resolve(&["--max-tcp-message-size", "100"]).is_err());
        assert!(resolve(&["--max-subscriptions-per-watcher", "0"]).is_err());
        Ok(())
    }

    fn with_cert(o: Options) -> Options {
        Options {
            tls_cert: Some("cert.pem".into()),
            tls_key: Some("key.pem".into()),
            ..o
        }
    }

    #[test]
    fn without_a_certificate_nothing_listens_on_tls_or_wss() {
        let c = Config::resolve(Options::default()).unwrap();
        assert!(c.tls_listen.is_empty() && c.wss_listen.is_empty());
    }

    #[test]
    fn with_a_certificate_tls_and_wss_listen_beside_sip() {
        let c = Config::resolve(with_cert(Options::default())).unwrap();
        assert_eq!(c.tls_listen, vec!["127.0.0.1:5061".parse().unwrap()]);
        assert_eq!(c.wss_listen, vec!["127.0.0.1:7443".parse().unwrap()]);

        let edge = Options {
            sip_listen: vec!["0.0.0.0:5060".parse().unwrap()],
            ..Options::default()
        };
        let c = Config::resolve(with_cert(edge)).unwrap();
        assert_eq!(c.tls_listen, vec!["0.0.0.0:5061".parse().unwrap()]);

        let tests = Options {
            sip_listen: vec!["127.0.0.1:0".parse().unwrap()],
            wss_listen: vec!["none".into()],
            ..Options::default()
        };
        let c = Config::resolve(with_cert(tests)).unwrap();
        assert_eq!(c.tls_listen, vec!["127.0.0.1:0".parse().unwrap()]);
        assert!(c.wss_listen.is_empty());
    }

    #[test]
    fn shard_lists_are_addresses_or_an_srv_name() -> anyhow::Result<()> {
        let c = resolve(&[
            "--presence-shards",
            "dns+srv:_grpc._tcp.herald-presence.herald.svc.cluster.local",
            "--messaging-shards",
            "http://a:1,http://b:2",
            "--dns-server",
            "127.0.0.1:5353",
        ])?;
        assert_eq!(
            c.presence_shards,
            ShardListSpec::Srv("_grpc._tcp.herald-presence.herald.svc.cluster.local".into())
        );
        assert_eq!(
            c.messaging_shards,
            ShardListSpec::Static(vec!["http://a:1".into(), "http://b:2".into()])
        );
        assert_eq!(c.shard_dns_interval, 5);
        assert_eq!(c.dns_server, Some("127.0.0.1:5353".parse()?));
        assert!(resolve(&["--presence-shards", "dns+srv:_grpc._tcp.p,http://b:2"]).is_err());
        assert!(resolve(&["--shard-dns-interval", "0"]).is_err());
        Ok(())
    }

    #[test]
    fn tls_flags_without_a_certificate_or_key_are_refused() {
        let listen = Options {
            tls_listen: vec!["127.0.0.1:5061".into()],
            ..Options::default()
        };
        assert!(Config::resolve(listen).is_err());
        let cert_only = Options {
            tls_cert: Some("cert.pem".into()),
            ..Options::default()
        };
        assert!(Config::resolve(cert_only).is_err());
    }
}
