//! A Herald cluster of real processes (DESIGN.md §2-3): presence shards,
//! messaging shards and edges started as `herald presence|messaging|edge`,
//! talking gRPC, with their state in a real `redis-server` (standalone or
//! a Redis Cluster).
//!
//! Every role learns every other's address before it starts, so the gRPC
//! ports are reserved up front; an edge keeps its SIP and gRPC ports when
//! it is started again, so clients and stored flow tokens still name it.
//! Failure tests kill, start and restart single processes by index and
//! grow the presence shard list.
//!
//! ```no_run
//! use testkit::{secs, RedisKind, TestCluster, UdpUa};
//! use testkit::presence::{pidf_tuple, PRESENCE};
//!
//! let cluster = TestCluster::start(2, 1, 2, RedisKind::Standalone).unwrap();
//! let mut alice = UdpUa::bind("alice", cluster.edge(0)).unwrap();
//! let mut bob = UdpUa::bind("bob", cluster.edge(1)).unwrap();
//! let (mut dialog, _) = bob.watch(&alice.aor(), PRESENCE, 600, secs(10)).unwrap();
//! let body = pidf_tuple(&alice.aor(), "phone", "open", None);
//! assert_eq!(alice.publish(&body, 600).unwrap().status, 200);
//! bob.recv_notify(&mut dialog, secs(10)).unwrap();
//! ```

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::dns::DnsServer;
use crate::herald::{Herald, HeraldProcess};
use crate::redis::{RedisCluster, RedisServer};

/// How long a graceful stop (SIGTERM) may take before the test fails.
const STOP_DEADLINE: Duration = Duration::from_secs(15);

/// Which Redis the cluster keeps its state in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisKind {
    /// One `redis-server`.
    Standalone,
    /// A Redis Cluster of this many masters (at least 3).
    Cluster(usize),
}

/// The Redis a [`TestCluster`] runs on.
pub enum Redis {
    Standalone(RedisServer),
    Cluster(RedisCluster),
}

impl Redis {
    /// The `--redis` value: `redis://host:port`, or
    /// `redis+cluster://host:port,host:port,...` for a cluster.
    pub fn url(&self) -> String {
        match self {
            Redis::Standalone(r) => r.url(),
            Redis::Cluster(c) => c.url(),
        }
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub presence_shards: usize,
    pub messaging_shards: usize,
    pub edges: usize,
    pub redis: RedisKind,
    /// Extra arguments for every presence shard (for example
    /// `--publish-min-expires 1`).
    pub presence_args: Vec<String>,
    /// Extra arguments for every messaging shard.
    pub messaging_args: Vec<String>,
    /// Extra arguments for every edge.
    pub edge_args: Vec<String>,
    /// Presence shards found through DNS (SRV records of a test
    /// [`DnsServer`]) instead of a list given to each process.
    pub presence_dns: Option<PresenceDns>,
}

/// How processes read the presence shard list from DNS: seconds between
/// readings, for shards and for edges.
#[derive(Debug, Clone, Copy)]
pub struct PresenceDns {
    pub shard_interval: u64,
    pub edge_interval: u64,
}

/// The SRV name of the presence shards in DNS-discovery clusters (as the
/// chart's headless Service gives it).
pub const PRESENCE_SRV: &str = "_grpc._tcp.herald-presence.herald.svc.cluster.local";

/// The DNS name of presence shard `i` (a StatefulSet pod's).
pub fn presence_pod(i: usize) -> String {
    format!("herald-presence-{i}.herald-presence.herald.svc.cluster.local")
}

impl ClusterSpec {
    pub fn new(
        presence_shards: usize,
        messaging_shards: usize,
        edges: usize,
        redis: RedisKind,
    ) -> ClusterSpec {
        ClusterSpec {
            presence_shards,
            messaging_shards,
            edges,
            redis,
            presence_args: Vec::new(),
            messaging_args: Vec::new(),
            edge_args: Vec::new(),
            presence_dns: None,
        }
    }

    /// Presence shards found in DNS: a test DNS server announces every
    /// shard started with the cluster; shards and edges get
    /// `--presence-shards dns+srv:...` and read it every `shard_interval`
    /// and `edge_interval` seconds. Shards added later are announced by
    /// [`TestCluster::announce_presence_shards`].
    pub fn presence_from_dns(mut self, shard_interval: u64, edge_interval: u64) -> Self {
        self.presence_dns = Some(PresenceDns {
            shard_interval,
            edge_interval,
        });
        self
    }

    /// Adds arguments for every presence shard.
    pub fn presence_args(mut self, args: &[&str]) -> Self {
        self.presence_args
            .extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Adds arguments for every messaging shard.
    pub fn messaging_args(mut self, args: &[&str]) -> Self {
        self.messaging_args
            .extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Adds arguments for every edge.
    pub fn edge_args(mut self, args: &[&str]) -> Self {
        self.edge_args.extend(args.iter().map(|a| a.to_string()));
        self
    }
}

/// A running cluster; every process and Redis is killed on drop. Process
/// slots are `None` while a test has one stopped.
pub struct TestCluster {
    redis: Redis,
    spec: ClusterSpec,
    /// gRPC ports, by shard ordinal / edge index.
    presence_ports: Vec<u16>,
    messaging_ports: Vec<u16>,
    edge_ports: Vec<u16>,
    /// Each edge's SIP address (UDP and TCP), fixed by its first start.
    edge_sip: Vec<SocketAddr>,
    presence: Vec<Option<HeraldProcess>>,
    messaging: Vec<Option<HeraldProcess>>,
    edges: Vec<Option<HeraldProcess>>,
    /// The DNS server of a DNS-discovery cluster.
    dns: Option<DnsServer>,
}

/// Picks `n` distinct TCP ports on 127.0.0.1 that are free now, below the
/// kernel's ephemeral range (32768-60999 on Linux). A port the kernel hands
/// out for `:0` goes back to that range when the probe closes it, and an
/// outgoing connection of any process (a gRPC client, a Redis client) can
/// take it before the role binds it: that made cluster tests fail now and
/// then with "Address already in use". Ports below the range are only
/// ever taken by a bind; one counter per test process, starting at a
/// place drawn from its pid and clock, keeps its picks apart from each
/// other and from other test processes' most of the time, and a port
/// that is busy is skipped.
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let start = (std::process::id().wrapping_mul(7_919) ^ nanos) % SPAN;
        let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    }
    let mut ports = Vec::with_capacity(n);
    for _ in 0..SPAN {
        if ports.len() == n {
            break;
        }
        let port = (LOW + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        // Free for TCP and UDP alike (edges bind both on their SIP port).
        let free = TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free && !ports.contains(&port) {
            ports.push(port);
        }
    }
    anyhow::ensure!(ports.len() == n, "no {n} free ports below 32768");
    Ok(ports)
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn list(ports: &[u16]) -> String {
    ports.iter().map(|p| url(*p)).collect::<Vec<_>>().join(",")
}

impl TestCluster {
    /// Starts Redis, then `presence` presence shards, `messaging`
    /// messaging shards and `edges` edges, each waited for until ready.
    pub fn start(
        presence: usize,
        messaging: usize,
        edges: usize,
        redis: RedisKind,
    ) -> Result<TestCluster> {
        Self::start_with(ClusterSpec::new(presence, messaging, edges, redis))
    }

    /// Starts the cluster `spec` describes.
    pub fn start_with(spec: ClusterSpec) -> Result<TestCluster> {
        if spec.presence_shards == 0 || spec.messaging_shards == 0 || spec.edges == 0 {
            bail!("a cluster needs at least one presence shard, one messaging shard and one edge");
        }
        let redis = match spec.redis {
            RedisKind::Standalone => Redis::Standalone(RedisServer::start()?),
            RedisKind::Cluster(masters) => Redis::Cluster(RedisCluster::start(masters)?),
        };
        let ports = free_ports(spec.presence_shards + spec.messaging_shards + spec.edges)?;
        let (presence_ports, rest) = ports.split_at(spec.presence_shards);
        let (messaging_ports, edge_ports) = rest.split_at(spec.messaging_shards);
        let mut cluster = TestCluster {
            redis,
            presence_ports: presence_ports.to_vec(),
            messaging_ports: messaging_ports.to_vec(),
            edge_ports: edge_ports.to_vec(),
            edge_sip: Vec::new(),
            presence: (0..spec.presence_shards).map(|_| None).collect(),
            messaging: (0..spec.messaging_shards).map(|_| None).collect(),
            edges: (0..spec.edges).map(|_| None).collect(),
            dns: match spec.presence_dns {
                Some(_) => Some(DnsServer::start()?),
                None => None,
            },
            spec,
        };
        if cluster.dns.is_some() {
            cluster.announce_presence_shards(cluster.presence.len())?;
        }
        for i in 0..cluster.presence.len() {
            cluster.start_presence(i)?;
        }
        for i in 0..cluster.messaging.len() {
            cluster.start_messaging(i)?;
        }
        for i in 0..cluster.edges.len() {
            cluster.start_edge(i)?;
        }
        Ok(cluster)
    }

    // ---- addresses -------------------------------------------------------

    /// Edge `i`'s SIP address (UDP and TCP share the port); the same
    /// after the edge is started again.
    pub fn edge(&self, i: usize) -> SocketAddr {
        self.edge_sip[i]
    }

    /// Edge `i`'s gRPC URL (what shards reach it at, and what its flow
    /// tokens start with).
    pub fn edge_url(&self, i: usize) -> String {
        url(self.edge_ports[i])
    }

    /// Every edge's gRPC URL, comma-separated (the shards' `--edges`).
    pub fn edge_list(&self) -> String {
        list(&self.edge_ports)
    }

    /// The presence shards' gRPC URLs in ordinal order, comma-separated:
    /// the list processes started from now on get.
    pub fn presence_list(&self) -> String {
        list(&self.presence_ports)
    }

    /// The messaging shards' list.
    pub fn messaging_list(&self) -> String {
        list(&self.messaging_ports)
    }

    /// The DNS server of a DNS-discovery cluster.
    pub fn dns(&self) -> Option<&DnsServer> {
        self.dns.as_ref()
    }

    /// Makes DNS list presence shards 0..n (SRV records naming each pod,
    /// A records for the pods), as a headless Service lists ready pods.
    pub fn announce_presence_shards(&mut self, n: usize) -> Result<()> {
        let dns = self.dns.as_ref().context("not a DNS-discovery cluster")?;
        if n > self.presence_ports.len() {
            bail!(
                "only {} presence shards have ports",
                self.presence_ports.len()
            );
        }
        let mut targets = Vec::new();
        for (i, port) in self.presence_ports.iter().take(n).enumerate() {
            dns.set_a(&presence_pod(i), std::net::Ipv4Addr::LOCALHOST);
            targets.push((presence_pod(i), *port));
        }
        dns.set_srv(PRESENCE_SRV, &targets);
        Ok(())
    }

    /// The `--presence-shards` arguments of a process: the list, or where
    /// DNS has it and how often to read it.
    fn presence_shard_args(&self, interval: impl Fn(&PresenceDns) -> u64) -> Vec<String> {
        match (&self.spec.presence_dns, &self.dns) {
            (Some(how), Some(dns)) => vec![
                "--presence-shards".into(),
                format!("dns+srv:{PRESENCE_SRV}"),
                "--dns-server".into(),
                dns.addr().to_string(),
                "--shard-dns-interval".into(),
                interval(how).to_string(),
            ],
            _ => vec!["--presence-shards".into(), self.presence_list()],
        }
    }

    /// How many presence shards the current list has.
    pub fn presence_shards(&self) -> usize {
        self.presence_ports.len()
    }

    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// The standalone Redis, to kill, restart, pause or resume it.
    pub fn standalone_redis(&mut self) -> Result<&mut RedisServer> {
        match &mut self.redis {
            Redis::Standalone(r) => Ok(r),
            Redis::Cluster(_) => bail!("this cluster runs on a Redis Cluster"),
        }
    }

    // ---- processes ---------------------------------------------------------

    /// Presence shard `i`, if running.
    pub fn presence(&self, i: usize) -> Option<&HeraldProcess> {
        self.presence.get(i).and_then(Option::as_ref)
    }

    /// Messaging shard `i`, if running.
    pub fn messaging(&self, i: usize) -> Option<&HeraldProcess> {
        self.messaging.get(i).and_then(Option::as_ref)
    }

    /// Edge `i`, if running.
    pub fn edge_process(&self, i: usize) -> Option<&HeraldProcess> {
        self.edges.get(i).and_then(Option::as_ref)
    }

    /// Starts presence shard `i` with the current shard list (a running
    /// one is killed first). It loads the state of the slots it owns from
    /// Redis before it says ready.
    pub fn start_presence(&mut self, i: usize) -> Result<()> {
        self.presence[i] = None;
        let mut args = vec![
            "presence".to_string(),
            "--shard-id".into(),
            i.to_string(),
            "--grpc-listen".into(),
            format!("127.0.0.1:{}", self.presence_ports[i]),
            "--redis".into(),
            self.redis.url(),
            "--edges".into(),
            self.edge_list(),
        ];
        args.extend(self.presence_shard_args(|d| d.shard_interval));
        args.extend(self.spec.presence_args.iter().cloned());
        let p = start(&args).with_context(|| format!("presence shard {i}"))?;
        self.presence[i] = Some(p);
        Ok(())
    }

    /// SIGKILLs presence shard `i`.
    pub fn kill_presence(&mut self, i: usize) -> Result<()> {
        match self.presence[i].take() {
            Some(mut p) => kill(&mut p),
            None => bail!("presence shard {i} is not running"),
        }
    }

    /// Stops presence shard `i` with SIGTERM (it must exit in time) and
    /// starts it with the current shard list.
    pub fn restart_presence(&mut self, i: usize) -> Result<()> {
        if let Some(mut p) = self.presence[i].take() {
            stop(&mut p).with_context(|| format!("stopping presence shard {i}"))?;
        }
        self.start_presence(i)
    }

    /// Reserves a port for one more presence shard, makes the longer list
    /// current and starts the new shard with it. Processes already
    /// running keep the list they started with until restarted (or, in a
    /// DNS-discovery cluster, until DNS announces the new shard and they
    /// read it).
    pub fn add_presence_shard(&mut self) -> Result<usize> {
        let taken: Vec<u16> = self
            .presence_ports
            .iter()
            .chain(&self.messaging_ports)
            .chain(&self.edge_ports)
            .copied()
            .collect();
        let port = free_ports(taken.len() + 1)?
            .into_iter()
            .find(|p| !taken.contains(p))
            .context("no free port")?;
        self.presence_ports.push(port);
        self.presence.push(None);
        let i = self.presence.len() - 1;
        self.start_presence(i)?;
        Ok(i)
    }

    /// Starts messaging shard `i` (a running one is killed first).
    pub fn start_messaging(&mut self, i: usize) -> Result<()> {
        self.messaging[i] = None;
        let mut args = vec![
            "messaging".to_string(),
            "--shard-id".into(),
            i.to_string(),
            "--messaging-shards".into(),
            self.messaging_list(),
            "--grpc-listen".into(),
            format!("127.0.0.1:{}", self.messaging_ports[i]),
            "--redis".into(),
            self.redis.url(),
            "--edges".into(),
            self.edge_list(),
        ];
        args.extend(self.spec.messaging_args.iter().cloned());
        let p = start(&args).with_context(|| format!("messaging shard {i}"))?;
        self.messaging[i] = Some(p);
        Ok(())
    }

    /// Starts edge `i` with the current shard lists (a running one is
    /// killed first), on the SIP port it had before if it ran before.
    pub fn start_edge(&mut self, i: usize) -> Result<()> {
        self.edges[i] = None;
        let mut args = vec![
            "edge".to_string(),
            "--grpc-listen".into(),
            format!("127.0.0.1:{}", self.edge_ports[i]),
            "--messaging-shards".into(),
            self.messaging_list(),
        ];
        args.extend(self.presence_shard_args(|d| d.edge_interval));
        if let Some(sip) = self.edge_sip.get(i) {
            args.push("--sip-listen".into());
            args.push(sip.to_string());
        }
        args.extend(self.spec.edge_args.iter().cloned());
        let p = start(&args).with_context(|| format!("edge {i}"))?;
        if i == self.edge_sip.len() {
            self.edge_sip.push(p.udp);
        } else if p.udp != self.edge_sip[i] {
            bail!(
                "edge {i} came back on {} instead of {}",
                p.udp,
                self.edge_sip[i]
            );
        }
        self.edges[i] = Some(p);
        Ok(())
    }

    /// SIGKILLs edge `i`.
    pub fn kill_edge(&mut self, i: usize) -> Result<()> {
        match self.edges[i].take() {
            Some(mut p) => kill(&mut p),
            None => bail!("edge {i} is not running"),
        }
    }

    /// Stops edge `i` with SIGTERM and starts it again on the same ports
    /// with the current shard lists.
    pub fn restart_edge(&mut self, i: usize) -> Result<()> {
        if let Some(mut p) = self.edges[i].take() {
            stop(&mut p).with_context(|| format!("stopping edge {i}"))?;
        }
        self.start_edge(i)
    }

    /// Fails unless every process the test has not stopped is still
    /// running and none has printed a panic (whole logs are read).
    pub fn check_healthy(&mut self) -> Result<()> {
        let mut problems = Vec::new();
        let roles = [
            ("presence shard", &mut self.presence),
            ("messaging shard", &mut self.messaging),
            ("edge", &mut self.edges),
        ];
        for (role, procs) in roles {
            for (i, p) in procs.iter_mut().enumerate() {
                let Some(p) = p else { continue };
                if !p.is_running() {
                    problems.push(format!(
                        "{role} {i} exited (log {}):\n{}",
                        p.log_path().display(),
                        p.output_tail()
                    ));
                } else if p.log_contains("panicked")? {
                    problems.push(format!(
                        "{role} {i} panicked (log {})",
                        p.log_path().display()
                    ));
                }
            }
        }
        if !problems.is_empty() {
            bail!("the cluster is not healthy:\n{}", problems.join("\n"));
        }
        Ok(())
    }
}

fn start(args: &[String]) -> Result<HeraldProcess> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Herald::start(&args)
}

fn kill(p: &mut HeraldProcess) -> Result<()> {
    p.kill()?;
    Ok(())
}

fn stop(p: &mut HeraldProcess) -> Result<()> {
    let status = p.terminate(STOP_DEADLINE)?;
    if !status.success() {
        bail!(
            "exited with {status} on SIGTERM (log {})",
            p.log_path().display()
        );
    }
    Ok(())
}
