//! Where a role's shard list comes from, and how it is kept current
//! (docs/decisions/0015-shard-discovery.md).
//!
//! A list is either given (`http://a:1,http://b:2`, Compose) or discovered
//! from the SRV records of a Kubernetes headless service
//! (`dns+srv:_grpc._tcp.herald-presence.herald.svc.cluster.local`). A
//! StatefulSet's pods are named `<set>-<ordinal>`, and the headless
//! service gives one SRV record per ready pod whose target is
//! `<set>-<ordinal>.<service>...`: the ordinal at the end of the first
//! label is the pod's place in the list. Plain A/AAAA records of the same
//! service carry no ordinal, so they cannot order the list (and the order
//! is what every node must agree on).
//!
//! Ordinals must be 0..N-1 with none missing: a gap is a pod not ready
//! (restarting, or not yet up), and routing over the shorter list would
//! move slots that did not move. Then the last good list stays in force
//! and the gap is logged.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use thiserror::Error;
use tokio::sync::{watch, Mutex};

use crate::{ShardId, ShardMap};

/// How a shard list is given in configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardListSpec {
    /// The addresses, in ordinal order.
    Static(Vec<String>),
    /// The SRV name of a headless service (`_grpc._tcp.<service>.<namespace>.svc...`).
    Srv(String),
}

/// The prefix that names an SRV-discovered list.
pub const SRV_PREFIX: &str = "dns+srv:";

impl ShardListSpec {
    /// Reads a list as configured: one `dns+srv:NAME` entry, or addresses.
    pub fn parse(entries: &[String]) -> Result<ShardListSpec, DiscoveryError> {
        let srv: Vec<&String> = entries
            .iter()
            .filter(|e| e.starts_with(SRV_PREFIX))
            .collect();
        match (srv.as_slice(), entries.len()) {
            ([], _) => Ok(ShardListSpec::Static(entries.to_vec())),
            ([one], 1) => {
                let name = one[SRV_PREFIX.len()..].trim();
                if name.is_empty() || name.contains(char::is_whitespace) {
                    return Err(DiscoveryError::BadName(one.to_string()));
                }
                Ok(ShardListSpec::Srv(name.to_owned()))
            }
            _ => Err(DiscoveryError::Mixed),
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, ShardListSpec::Static(a) if a.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DiscoveryError {
    #[error("a shard list is either one dns+srv:NAME or addresses, not both")]
    Mixed,
    #[error("bad SRV name in {0}")]
    BadName(String),
    #[error("SRV target {0} has no StatefulSet ordinal at the end of its first label")]
    NoOrdinal(String),
    #[error("ordinal {0} appears for two different targets")]
    DuplicateOrdinal(u32),
    #[error(
        "ordinals are not contiguous: {missing} is missing of {found} found (a pod not ready?)"
    )]
    Gap { missing: u32, found: usize },
    #[error("no SRV records")]
    Empty,
    #[error("DNS lookup of {name} failed: {reason}")]
    Lookup { name: String, reason: String },
}

/// One SRV record's target and port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SrvTarget {
    /// The target host, without the final dot.
    pub host: String,
    pub port: u16,
}

/// The StatefulSet ordinal of a pod's DNS name: the digits after the last
/// `-` of its first label (`herald-presence-12.herald-presence...` -> 12).
pub fn ordinal_of(host: &str) -> Option<u32> {
    let label = host.split('.').next()?;
    let (_, digits) = label.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // "007" is not a StatefulSet ordinal.
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

/// Targets by ordinal. The same target listed twice counts once.
pub fn by_ordinal(targets: Vec<SrvTarget>) -> Result<BTreeMap<u32, SrvTarget>, DiscoveryError> {
    let mut by_ordinal: BTreeMap<u32, SrvTarget> = BTreeMap::new();
    for t in targets {
        let ordinal =
            ordinal_of(&t.host).ok_or_else(|| DiscoveryError::NoOrdinal(t.host.clone()))?;
        match by_ordinal.get(&ordinal) {
            Some(seen) if seen.host.eq_ignore_ascii_case(&t.host) && seen.port == t.port => {}
            Some(_) => return Err(DiscoveryError::DuplicateOrdinal(ordinal)),
            None => {
                by_ordinal.insert(ordinal, t);
            }
        }
    }
    Ok(by_ordinal)
}

/// The list in ordinal order, if the ordinals are exactly 0..N-1.
pub fn contiguous<T>(found: BTreeMap<u32, T>) -> Result<Vec<T>, DiscoveryError> {
    if found.is_empty() {
        return Err(DiscoveryError::Empty);
    }
    let count = found.len();
    for (expected, ordinal) in found.keys().enumerate() {
        if *ordinal != expected as u32 {
            return Err(DiscoveryError::Gap {
                missing: expected as u32,
                found: count,
            });
        }
    }
    Ok(found.into_values().collect())
}

/// Something that can say what the shard list is now.
#[async_trait]
pub trait Discover: Send + Sync + 'static {
    /// The addresses (`http://ip:port`) found, by ordinal; gaps are for
    /// the caller to judge. Nothing found is an empty map.
    async fn discover(&self) -> Result<BTreeMap<u32, String>, DiscoveryError>;
}

/// Discovery from SRV records, through hickory's resolver.
pub struct SrvDiscovery {
    name: String,
    resolver: TokioResolver,
}

impl SrvDiscovery {
    /// Resolves `name` through `server` (`ip:port`, for tests and odd
    /// clusters) or else the system's resolv.conf. Answers are not cached:
    /// each refresh asks the server, which is what a refresh is for.
    pub fn new(name: String, server: Option<SocketAddr>) -> Result<Self, DiscoveryError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    provider,
                )
            }
            None => TokioResolver::builder(provider).map_err(|e| DiscoveryError::Lookup {
                name: "resolv.conf".into(),
                reason: e.to_string(),
            })?,
        };
        let options = builder.options_mut();
        options.cache_size = 0;
        options.positive_max_ttl = Some(Duration::ZERO);
        options.negative_max_ttl = Some(Duration::ZERO);
        options.timeout = Duration::from_secs(2);
        options.attempts = 1;
        let resolver = builder.build().map_err(|e| DiscoveryError::Lookup {
            name: name.clone(),
            reason: e.to_string(),
        })?;
        Ok(SrvDiscovery { name, resolver })
    }

    async fn address_of(&self, target: &SrvTarget) -> Result<String, DiscoveryError> {
        let ip: IpAddr = match target.host.parse() {
            Ok(ip) => ip,
            Err(_) => {
                let fqdn = format!("{}.", target.host);
                let ips = self.resolver.lookup_ip(fqdn.as_str()).await.map_err(|e| {
                    DiscoveryError::Lookup {
                        name: target.host.clone(),
                        reason: e.to_string(),
                    }
                })?;
                ips.iter().next().ok_or_else(|| DiscoveryError::Lookup {
                    name: target.host.clone(),
                    reason: "no address".into(),
                })?
            }
        };
        Ok(format!("http://{}", SocketAddr::new(ip, target.port)))
    }
}

#[async_trait]
impl Discover for SrvDiscovery {
    async fn discover(&self) -> Result<BTreeMap<u32, String>, DiscoveryError> {
        let fqdn = if self.name.ends_with('.') {
            self.name.clone()
        } else {
            format!("{}.", self.name)
        };
        let lookup = match self.resolver.srv_lookup(fqdn.as_str()).await {
            Ok(lookup) => lookup,
            // No ready pod: the service has no records (NXDOMAIN or none).
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => return Ok(BTreeMap::new()),
            Err(e) => {
                return Err(DiscoveryError::Lookup {
                    name: self.name.clone(),
                    reason: e.to_string(),
                })
            }
        };
        let targets = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(srv) => Some(SrvTarget {
                    host: srv.target.to_ascii().trim_end_matches('.').to_owned(),
                    port: srv.port,
                }),
                _ => None,
            })
            .collect();
        // Pod IPs, not names: the names are only in the cluster's DNS
        // (the one asked here), and a restarted pod's new IP shows at the
        // next refresh as a new address, with a new connection.
        let mut addrs = BTreeMap::new();
        for (ordinal, t) in by_ordinal(targets)? {
            addrs.insert(ordinal, self.address_of(&t).await?);
        }
        Ok(addrs)
    }
}

/// A role's shard list as it is now, kept current by its source. Cheap to
/// clone; every clone sees the same list.
#[derive(Clone)]
pub struct LiveShards {
    inner: Arc<Live>,
}

struct Live {
    role: &'static str,
    current: watch::Sender<Option<Arc<ShardMap>>>,
    source: Option<Arc<dyn Discover>>,
    /// The shard holding this list, if it is one: it counts itself before
    /// DNS, which lists only ready pods, shows it (its own address does
    /// not matter to it, only the count).
    me: Option<ShardId>,
    /// One refresh at a time; a caller that waited for another's refresh
    /// takes its result (`done` counts finished refreshes).
    refreshing: Mutex<()>,
    done: AtomicU64,
}

impl LiveShards {
    /// A list that never changes.
    pub fn fixed(role: &'static str, map: ShardMap) -> LiveShards {
        LiveShards {
            inner: Arc::new(Live {
                role,
                current: watch::Sender::new(Some(Arc::new(map))),
                source: None,
                me: None,
                refreshing: Mutex::new(()),
                done: AtomicU64::new(0),
            }),
        }
    }

    /// A list from `source`, asked once now (a failure is logged and
    /// leaves no list until a refresh succeeds). `me` is the shard holding
    /// the list, which counts itself in.
    pub async fn discovered(
        role: &'static str,
        source: Arc<dyn Discover>,
        me: Option<ShardId>,
    ) -> LiveShards {
        let live = LiveShards {
            inner: Arc::new(Live {
                role,
                current: watch::Sender::new(None),
                source: Some(source),
                me,
                refreshing: Mutex::new(()),
                done: AtomicU64::new(0),
            }),
        };
        live.refresh().await;
        live
    }

    /// The list now; `None` when discovery has not found one yet.
    pub fn current(&self) -> Option<Arc<ShardMap>> {
        self.inner.current.borrow().clone()
    }

    /// Tells of every change of the list.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<ShardMap>>> {
        self.inner.current.subscribe()
    }

    /// Whether the list can change (it is discovered).
    pub fn is_discovered(&self) -> bool {
        self.inner.source.is_some()
    }

    /// Asks the source again (a given list stays as it is) and returns the
    /// list now. A failed or gapped answer keeps the last good list.
    pub async fn refresh(&self) -> Option<Arc<ShardMap>> {
        let Some(source) = &self.inner.source else {
            return self.current();
        };
        let seen = self.inner.done.load(Ordering::SeqCst);
        let _running = self.inner.refreshing.lock().await;
        if self.inner.done.load(Ordering::SeqCst) != seen {
            // Someone refreshed while we waited: theirs is as fresh as ours.
            return self.current();
        }
        let role = self.inner.role;
        let found = source.discover().await.and_then(|mut found| {
            if let Some(me) = self.inner.me {
                found
                    .entry(me.0)
                    .or_insert_with(|| format!("unlisted-shard-{me}"));
            }
            contiguous(found)
        });
        match found {
            Ok(addrs) => {
                let map = ShardMap::new(addrs).ok().map(Arc::new);
                self.inner.current.send_if_modified(|now| {
                    if now.as_deref().map(ShardMap::addrs) == map.as_deref().map(ShardMap::addrs) {
                        return false;
                    }
                    tracing::info!(
                        role,
                        shards = map.as_ref().map_or(0, |m| m.len()),
                        list = ?map.as_ref().map(|m| m.addrs()),
                        "{role} shard list changed"
                    );
                    *now = map.clone();
                    true
                });
            }
            Err(e) => {
                tracing::warn!(
                    role,
                    error = %e,
                    "{role} shard list not refreshed, the last good one stays"
                );
            }
        }
        self.inner.done.fetch_add(1, Ordering::SeqCst);
        self.current()
    }

    /// Refreshes every `interval` until `stop` resolves.
    pub fn spawn_refresh(
        &self,
        interval: Duration,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        if !self.is_discovered() {
            return;
        }
        let live = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        live.refresh().await;
                    }
                    _ = &mut stop => return,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(host: &str, port: u16) -> SrvTarget {
        SrvTarget {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn ordinals_come_from_the_end_of_the_first_label() {
        assert_eq!(
            ordinal_of("herald-presence-0.herald-presence.herald.svc"),
            Some(0)
        );
        assert_eq!(ordinal_of("herald-presence-12.x"), Some(12));
        assert_eq!(ordinal_of("web-3"), Some(3));
        assert_eq!(
            ordinal_of("presence.herald-7.svc"),
            None,
            "not in the first label"
        );
        assert_eq!(ordinal_of("presence-x.svc"), None);
        assert_eq!(ordinal_of("presence-.svc"), None);
        assert_eq!(ordinal_of("presence-07.svc"), None);
        assert_eq!(
            ordinal_of("10-0-0-1"),
            Some(1),
            "an IP-like label still ends in digits"
        );
    }

    #[test]
    fn targets_are_ordered_by_ordinal_not_by_answer_order() {
        let got = contiguous(
            by_ordinal(vec![
                t("herald-presence-2.p.svc", 7000),
                t("herald-presence-0.p.svc", 7000),
                t("herald-presence-10.p.svc", 7000),
                t("herald-presence-1.p.svc", 7000),
                t("herald-presence-3.p.svc", 7000),
                t("herald-presence-4.p.svc", 7000),
                t("herald-presence-5.p.svc", 7000),
                t("herald-presence-6.p.svc", 7000),
                t("herald-presence-7.p.svc", 7000),
                t("herald-presence-8.p.svc", 7000),
                t("herald-presence-9.p.svc", 7000),
            ])
            .unwrap(),
        )
        .unwrap();
        let ordinals: Vec<u32> = got.iter().map(|t| ordinal_of(&t.host).unwrap()).collect();
        assert_eq!(
            ordinals,
            (0..11).collect::<Vec<_>>(),
            "numeric, not text, order"
        );
    }

    #[test]
    fn a_gap_is_an_error_naming_the_missing_ordinal() {
        let ordered = |v| contiguous(by_ordinal(v).unwrap());
        let got = ordered(vec![t("p-0.s", 1), t("p-2.s", 1), t("p-3.s", 1)]);
        assert_eq!(
            got,
            Err(DiscoveryError::Gap {
                missing: 1,
                found: 3
            })
        );
        // Ordinal 0 missing (the first pod restarting).
        let got = ordered(vec![t("p-1.s", 1)]);
        assert_eq!(
            got,
            Err(DiscoveryError::Gap {
                missing: 0,
                found: 1
            })
        );
        assert_eq!(ordered(vec![]), Err(DiscoveryError::Empty));
    }

    #[test]
    fn duplicates_count_once_and_conflicts_are_errors() {
        let got = by_ordinal(vec![t("p-1.s", 1), t("p-0.s", 1), t("P-0.s", 1)]).unwrap();
        assert_eq!(contiguous(got).unwrap(), vec![t("p-0.s", 1), t("p-1.s", 1)]);
        assert_eq!(
            by_ordinal(vec![t("p-0.s", 1), t("q-0.s", 1)]),
            Err(DiscoveryError::DuplicateOrdinal(0))
        );
        assert_eq!(
            by_ordinal(vec![t("p-0.s", 1), t("nope.s", 1)]),
            Err(DiscoveryError::NoOrdinal("nope.s".into()))
        );
    }

    #[test]
    fn list_specs_are_addresses_or_one_srv_name() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ShardListSpec::parse(&s(&["http://a:1", "http://b:2"])),
            Ok(ShardListSpec::Static(s(&["http://a:1", "http://b:2"])))
        );
        assert_eq!(
            ShardListSpec::parse(&s(&["dns+srv:_grpc._tcp.p.herald.svc.cluster.local"])),
            Ok(ShardListSpec::Srv(
                "_grpc._tcp.p.herald.svc.cluster.local".into()
            ))
        );
        assert_eq!(
            ShardListSpec::parse(&s(&["dns+srv:_grpc._tcp.p", "http://b:2"])),
            Err(DiscoveryError::Mixed)
        );
        assert!(ShardListSpec::parse(&s(&["dns+srv:"])).is_err());
    }

    /// A source answering from a script, for the list's own rules.
    struct Scripted(std::sync::Mutex<Vec<Vec<u32>>>);

    #[async_trait]
    impl Discover for Scripted {
        async fn discover(&self) -> Result<BTreeMap<u32, String>, DiscoveryError> {
            let ordinals = self.0.lock().unwrap().remove(0);
            Ok(ordinals
                .into_iter()
                .map(|i| (i, format!("http://10.0.0.{i}:7000")))
                .collect())
        }
    }

    fn scripted(answers: &[&[u32]]) -> Arc<Scripted> {
        Arc::new(Scripted(std::sync::Mutex::new(
            answers.iter().map(|a| a.to_vec()).collect(),
        )))
    }

    #[tokio::test]
    async fn a_gap_keeps_the_last_good_list() {
        let source = scripted(&[&[1, 0], &[0, 2], &[], &[0, 1, 2]]);
        let live = LiveShards::discovered("presence", source, None).await;
        let changes = live.subscribe();
        assert_eq!(live.current().unwrap().len(), 2);
        assert_eq!(
            live.current().unwrap().addr(ShardId(1)),
            Some("http://10.0.0.1:7000")
        );
        assert_eq!(
            live.refresh().await.unwrap().len(),
            2,
            "gap: last good list"
        );
        assert_eq!(
            live.refresh().await.unwrap().len(),
            2,
            "none: last good list"
        );
        assert!(!changes.has_changed().unwrap());
        assert_eq!(live.refresh().await.unwrap().len(), 3);
        assert!(changes.has_changed().unwrap());
    }

    /// Counts its readings, each taking a while.
    struct Slow(std::sync::atomic::AtomicUsize);

    #[async_trait]
    impl Discover for Slow {
        async fn discover(&self) -> Result<BTreeMap<u32, String>, DiscoveryError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(BTreeMap::from([(0, "http://10.0.0.0:7000".to_string())]))
        }
    }

    #[tokio::test]
    async fn concurrent_refreshes_ask_once() {
        let source = Arc::new(Slow(Default::default()));
        let live = LiveShards::discovered("presence", source.clone(), None).await;
        assert_eq!(source.0.load(Ordering::SeqCst), 1);
        let refreshes: Vec<_> = (0..10)
            .map(|_| {
                let live = live.clone();
                tokio::spawn(async move { live.refresh().await })
            })
            .collect();
        for r in refreshes {
            assert_eq!(r.await.unwrap().unwrap().len(), 1);
        }
        // The first ran; the others waited for it and took its answer (a
        // few may have started after it finished, none ran in parallel).
        let asked = source.0.load(Ordering::SeqCst) - 1;
        assert!(
            (1..10).contains(&asked),
            "{asked} readings for 10 refreshes"
        );
    }

    #[tokio::test]
    async fn a_shard_counts_itself_before_dns_lists_it() {
        // Shard 2 starting (0 and 1 ready), then shard 0 restarting.
        let source = scripted(&[&[0, 1], &[0, 1, 2], &[1, 2], &[1]]);
        let live = LiveShards::discovered("presence", source, Some(ShardId(2))).await;
        assert_eq!(live.current().unwrap().len(), 3);
        assert_eq!(live.refresh().await.unwrap().len(), 3);
        assert_eq!(
            live.refresh().await.unwrap().len(),
            3,
            "0 missing: last good"
        );
        assert_eq!(live.refresh().await.unwrap().len(), 3, "gap: last good");
        let alone = LiveShards::discovered("presence", scripted(&[&[]]), Some(ShardId(0))).await;
        assert_eq!(
            alone.current().unwrap().len(),
            1,
            "the first shard of a new set"
        );
        let early = LiveShards::discovered("presence", scripted(&[&[]]), Some(ShardId(1))).await;
        assert!(
            early.current().is_none(),
            "shard 1 without shard 0: no list yet"
        );
    }
}
