//! Flood limits at the edge: requests per second per source address and
//! per user (token buckets), and open connections per source address.
//!
//! Memory stays bounded whatever the sources claim to be: a UDP flood with
//! spoofed source addresses creates at most [`MAX_TRACKED`] buckets per
//! table; past that, untracked sources share one bucket
//! (docs/decisions/0013-limits.md). Connection counts need no cap of their
//! own: an entry exists only while a connection from that address is open.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sip::{Aor, HeaderName, Request, Response};

use crate::flow::{Flow, Transport};
use crate::Edge;

/// Buckets one table keeps at most (about 65 bytes each keyed by address,
/// 150 by user).
pub const MAX_TRACKED: usize = 100_000;

/// A bucket holds this many seconds of its rate: a client may send a
/// burst (a softphone subscribing to its whole buddy list at login) and
/// then keep to the rate.
pub const BURST_SECONDS: u32 = 4;

/// How often a full table is swept of idle buckets, at most.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Flood limits of one edge; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodLimits {
    /// Requests per second from one source address (an IPv6 /64).
    pub requests_per_ip: u32,
    /// Requests per second from one user (the From address of record).
    pub requests_per_user: u32,
    /// Connections (TCP, TLS, WebSocket together) open from one address.
    pub connections_per_ip: usize,
}

impl Default for FloodLimits {
    fn default() -> Self {
        FloodLimits {
            requests_per_ip: 200,
            requests_per_user: 50,
            connections_per_ip: 100,
        }
    }
}

/// Largest SIP message per transport, bytes. Over UDP and WebSocket a
/// message is one datagram or frame; over a stream the framer stops at
/// the limit. An oversized request whose head can be read gets 413 (RFC
/// 3261 §21.4.11); on a stream the connection is then closed, since its
/// framing is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSizes {
    pub udp: usize,
    /// TCP and TLS.
    pub stream: usize,
    /// WebSocket, ws and wss.
    pub ws: usize,
}

impl Default for MessageSizes {
    fn default() -> Self {
        let all = sip::Limits::default().max_message_size;
        MessageSizes {
            udp: all,
            stream: all,
            ws: all,
        }
    }
}

impl MessageSizes {
    pub fn of(&self, transport: Transport) -> usize {
        match transport {
            Transport::Udp => self.udp,
            Transport::Ws | Transport::Wss => self.ws,
            // TCP, and TLS framed the same way.
            _ => self.stream,
        }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    /// 503 with Retry-After, in seconds (RFC 3261 §21.5.4).
    Refuse {
        retry_after: u32,
    },
    /// Over twice the rate: not even a refusal. Over UDP the source
    /// address may be forged, and answering every packet of a flood would
    /// make Herald a reflector.
    Drop,
}

/// The source key: an IPv4 address, or the /64 of an IPv6 one (a single
/// host usually holds a whole /64, so counting addresses in it would let
/// it rotate past any limit).
pub(crate) fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Requests that may pass now.
    tokens: f64,
    /// Refusals that may still be answered now; refills at the same rate,
    /// so 503s go out at most at the request rate and the rest is dropped.
    refusals: f64,
    last: Instant,
}

/// Token buckets by key, in a table of bounded size.
pub(crate) struct RateTable<K> {
    rate: f64,
    burst: f64,
    capacity: usize,
    inner: Mutex<Table<K>>,
}

struct Table<K> {
    buckets: HashMap<K, Bucket>,
    /// Shared by every key that found the table full.
    overflow: Option<Bucket>,
    last_sweep: Option<Instant>,
}

impl<K: Hash + Eq + Clone> RateTable<K> {
    /// `per_second` requests per second with bursts of [`BURST_SECONDS`];
    /// `None` for 0 (no limit).
    pub(crate) fn new(per_second: u32, capacity: usize) -> Option<Self> {
        (per_second > 0).then(|| RateTable {
            rate: f64::from(per_second),
            burst: f64::from(per_second.saturating_mul(BURST_SECONDS)),
            capacity,
            inner: Mutex::new(Table {
                buckets: HashMap::new(),
                overflow: None,
                last_sweep: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table<K>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one request's token for `key` at `now`.
    pub(crate) fn check(&self, key: &K, now: Instant) -> Verdict {
        let mut table = self.lock();
        if !table.buckets.contains_key(key) && table.buckets.len() >= self.capacity {
            self.sweep(&mut table, now);
        }
        let fresh = Bucket {
            tokens: self.burst,
            refusals: self.burst,
            last: now,
        };
        let bucket = if table.buckets.len() < self.capacity || table.buckets.contains_key(key) {
            table.buckets.entry(key.clone()).or_insert(fresh)
        } else {
            table.overflow.get_or_insert(fresh)
        };
        self.take(bucket, now)
    }

    fn take(&self, b: &mut Bucket, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.last = now.max(b.last);
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.refusals = (b.refusals + elapsed * self.rate).min(self.burst);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Verdict::Allow;
        }
        if b.refusals >= 1.0 {
            b.refusals -= 1.0;
            let wait = ((1.0 - b.tokens) / self.rate).ceil().max(1.0);
            return Verdict::Refuse {
                retry_after: wait as u32,
            };
        }
        Verdict::Drop
    }

    /// Forgets buckets that have refilled: they hold nothing a new bucket
    /// would not. At most once per [`SWEEP_EVERY`], so a flood of new
    /// keys against a full table costs one pass per second, not per packet.
    fn sweep(&self, table: &mut Table<K>, now: Instant) {
        if table
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_EVERY)
        {
            return;
        }
        table.last_sweep = Some(now);
        let full_after = Duration::from_secs_f64(self.burst / self.rate);
        table
            .buckets
            .retain(|_, b| now.saturating_duration_since(b.last) < full_after);
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().buckets.len()
    }
}

/// Open connections per source address.
pub(crate) struct ConnectionTable {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Holds one connection's place in its address's count until dropped.
pub(crate) struct ConnectionSlot {
    key: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnectionTable {
    pub(crate) fn new(max: usize) -> Self {
        ConnectionTable {
            max,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot for a new connection from `ip`, or `None` past the limit.
    pub(crate) fn open(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let key = source_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if self.max > 0 && *count >= self.max {
            if *count == 0 {
                open.remove(&key);
            }
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            key,
            open: Arc::clone(&self.open),
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The edge's flood state.
pub(crate) struct Flood {
    per_ip: Option<RateTable<IpAddr>>,
    per_user: Option<RateTable<Aor>>,
    pub(crate) connections: ConnectionTable,
}

impl Flood {
    pub(crate) fn new(limits: &FloodLimits) -> Self {
        Flood {
            per_ip: RateTable::new(limits.requests_per_ip, MAX_TRACKED),
            per_user: RateTable::new(limits.requests_per_user, MAX_TRACKED),
            connections: ConnectionTable::new(limits.connections_per_ip),
        }
    }

    /// The verdict on a new request: its source's bucket first, then its
    /// user's when `by_from` (the From address of record; a request without
    /// a usable From fails validation later anyway). A user's tokens are
    /// only spent by requests its source was allowed to send. With digest
    /// authentication on, the user's bucket is taken after authentication
    /// instead ([`Flood::check_user`]), so a forged From cannot spend
    /// someone else's budget.
    fn check(&self, request: &Request, flow: &Flow, now: Instant, by_from: bool) -> Verdict {
        if let Some(table) = &self.per_ip {
            let verdict = table.check(&source_key(flow.remote.ip()), now);
            if verdict != Verdict::Allow {
                return verdict;
            }
        }
        if let Some(table) = self.per_user.as_ref().filter(|_| by_from) {
            let user = request
                .headers
                .from_addr()
                .ok()
                .and_then(|from| Aor::from_uri(&from.uri).ok());
            if let Some(user) = user {
                return table.check(&user, now);
            }
        }
        Verdict::Allow
    }
}

impl Flood {
    /// The verdict of an authenticated user's bucket.
    fn check_user(&self, user: &Aor, now: Instant) -> Verdict {
        match &self.per_user {
            Some(table) => table.check(user, now),
            None => Verdict::Allow,
        }
    }
}

impl Edge {
    /// The per-user rate of an authenticated request: the 503 to send, if
    /// it is over (every answer goes out: the user proved who it is).
    pub(crate) fn user_over_limit(&self, request: &Request, user: &Aor) -> Option<Response> {
        match self.flood.check_user(user, Instant::now()) {
            Verdict::Allow => None,
            Verdict::Refuse { retry_after } => Some(self.refusal(request, retry_after)),
            Verdict::Drop => Some(self.refusal(request, 1)),
        }
    }

    /// The parser limits for messages arriving over `transport`.
    pub(crate) fn sip_limits(&self, transport: Transport) -> sip::Limits {
        sip::Limits {
            max_message_size: self.config.message_sizes.of(transport),
            ..self.config.limits.clone()
        }
    }

    /// Applies the flood limits to a request before the transaction layer
    /// sees it (so a flood of new branches does not fill the transaction
    /// table either). Returns the refusal to send, `Some(None)` to drop the
    /// request silently, `None` to go on.
    pub(crate) fn over_limit(&self, request: &Request, flow: &Flow) -> Option<Option<Response>> {
        let by_from = self.authenticator.get().is_none();
        match self.flood.check(request, flow, Instant::now(), by_from) {
            Verdict::Allow => None,
            // Over a connection the peer's address is real (it completed a
            // handshake), so it always gets its answer.
            Verdict::Drop if flow.transport == Transport::Udp => {
                tracing::debug!(remote = %flow.remote, method = %request.method.as_str(), "flood: dropped");
                Some(None)
            }
            Verdict::Refuse { retry_after } => Some(Some(self.refusal(request, retry_after))),
            Verdict::Drop => Some(Some(self.refusal(request, 1))),
        }
    }

    fn refusal(&self, request: &Request, retry_after: u32) -> Response {
        tracing::debug!(method = %request.method.as_str(), retry_after, "over the request rate: 503");
        let mut r = self.reply(request, 503);
        r.headers
            .push(HeaderName::RetryAfter, retry_after.to_string());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let t = RateTable::new(10, 100).unwrap();
        let now = Instant::now();
        let key = ip("192.0.2.1");
        for _ in 0..10 * BURST_SECONDS {
            assert_eq!(t.check(&key, now), Verdict::Allow);
        }
        assert!(matches!(
            t.check(&key, now),
            Verdict::Refuse { retry_after: 1 }
        ));
        // A tenth of a second later one more token has come.
        let later = now + Duration::from_millis(100);
        assert_eq!(t.check(&key, later), Verdict::Allow);
        // Another source is unaffected.
        assert_eq!(t.check(&ip("192.0.2.2"), now), Verdict::Allow);
    }

    #[test]
    fn refusals_beyond_twice_the_rate_are_dropped() {
        let t = RateTable::new(5, 100).unwrap();
        let now = Instant::now();
        let key = ip("192.0.2.1");
        let verdicts: Vec<Verdict> = (0..100).map(|_| t.check(&key, now)).collect();
        let allowed = verdicts.iter().filter(|v| **v == Verdict::Allow).count();
        let refused = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Refuse { .. }))
            .count();
        let burst = (5 * BURST_SECONDS) as usize;
        assert_eq!(allowed, burst);
        assert_eq!(refused, burst);
        assert_eq!(verdicts.last(), Some(&Verdict::Drop));
    }

    #[test]
    fn a_spoofed_flood_cannot_grow_the_table_past_its_capacity() {
        let t = RateTable::new(1, 64).unwrap();
        let now = Instant::now();
        for i in 0..10_000u32 {
            let key = IpAddr::from(i.to_be_bytes());
            t.check(&key, now);
        }
        assert_eq!(t.tracked(), 64);
        // Untracked sources share one bucket: the flood is limited as one.
        let newcomer = ip("198.51.100.7");
        assert_ne!(t.check(&newcomer, now), Verdict::Allow);
        // Once the tracked buckets have refilled they are swept and a new
        // source gets a bucket of its own.
        let later = now + Duration::from_secs(u64::from(BURST_SECONDS) + 1);
        assert_eq!(t.check(&newcomer, later), Verdict::Allow);
        assert_eq!(t.tracked(), 1);
    }

    #[test]
    fn ipv6_sources_are_counted_by_their_64() {
        assert_eq!(
            source_key(ip("2001:db8:1:2:aaaa::1")),
            source_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            source_key(ip("2001:db8:1:2::1")),
            source_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(source_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn connections_are_counted_while_open() {
        let table = ConnectionTable::new(2);
        let a = ip("192.0.2.1");
        let first = table.open(a).unwrap();
        let _second = table.open(a).unwrap();
        assert!(table.open(a).is_none());
        assert!(table.open(ip("192.0.2.2")).is_some());
        drop(first);
        assert!(table.open(a).is_some());
    }

    #[test]
    fn zero_turns_limits_off() {
        assert!(RateTable::<IpAddr>::new(0, 10).is_none());
        let table = ConnectionTable::new(0);
        let slots: Vec<_> = (0..1000).map(|_| table.open(ip("192.0.2.1"))).collect();
        assert!(slots.iter().all(Option::is_some));
    }
}
