//! The RFC 3261 §17 non-INVITE transaction layer, without I/O.
//!
//! [`ServerTransactions`] absorbs retransmitted requests: while a request
//! is being handled a retransmission is dropped (§17.2.2 Trying), and once
//! it is answered the same final response is sent again until Timer J.
//! [`ClientSchedule`] is the retransmission clock of one request Herald
//! sends (§17.1.2.2 Timers E and F). Both take `now` from the caller, so
//! tests run them on virtual time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip::{Request, BRANCH_COOKIE};

/// RFC 3261 timer values. T1 is configurable (tests shorten it); the rest
/// follow the RFC defaults.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    /// RTT estimate, 500 ms by default (§17.1.1.1).
    pub t1: Duration,
    /// Cap on non-INVITE retransmission interval, 4 s.
    pub t2: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
        }
    }
}

impl Timers {
    /// Timer F (client timeout) and Timer J (server wait for
    /// retransmissions over unreliable transports): 64*T1.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// Identifies a server transaction (§17.2.3): the top Via's branch with
/// its sent-by and the method; for RFC 2543 peers without the magic
/// cookie, the fields that identified a request then.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    Branch {
        branch: String,
        sent_by: String,
        method: String,
    },
    Legacy {
        call_id: String,
        cseq: String,
        from_tag: String,
        via: String,
        method: String,
    },
}

impl TransactionKey {
    /// The key of a request; `None` if it lacks what a key needs (such a
    /// request cannot have passed the parser's mandatory-header check).
    pub fn of(request: &Request) -> Option<TransactionKey> {
        let via = request.headers.top_via().ok()?;
        let method = request.method.as_str().to_string();
        match via.branch() {
            Some(b) if b.starts_with(BRANCH_COOKIE) && b.len() > BRANCH_COOKIE.len() => {
                Some(TransactionKey::Branch {
                    branch: b.to_string(),
                    sent_by: via.sent_by().to_ascii_lowercase(),
                    method,
                })
            }
            _ => {
                let cseq = request.headers.cseq().ok()?;
                Some(TransactionKey::Legacy {
                    call_id: request.headers.call_id().ok()?.to_string(),
                    cseq: cseq.seq.to_string(),
                    from_tag: request
                        .headers
                        .from_addr()
                        .ok()
                        .and_then(|f| f.tag().map(str::to_string))
                        .unwrap_or_default(),
                    via: via.to_string(),
                    method,
                })
            }
        }
    }
}

/// What to do with a request that arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAction {
    /// A new transaction: handle the request.
    New,
    /// A retransmission while the request is being handled: drop it.
    Absorb,
    /// A retransmission of an answered request: send this response again.
    Resend(Bytes),
}

enum ServerState {
    Trying { since: Instant },
    Completed { response: Bytes, until: Instant },
}

/// Table capacity below which an emptied server transaction table is kept
/// as it is (not worth a rehash).
const SHRINK_ABOVE: usize = 4096;

/// Every live server transaction of one edge.
pub struct ServerTransactions {
    timers: Timers,
    map: HashMap<TransactionKey, ServerState>,
}

impl ServerTransactions {
    pub fn new(timers: Timers) -> Self {
        ServerTransactions {
            timers,
            map: HashMap::new(),
        }
    }

    pub fn on_request(&mut self, key: &TransactionKey, now: Instant) -> ServerAction {
        match self.map.get(key) {
            None => {
                self.map
                    .insert(key.clone(), ServerState::Trying { since: now });
                ServerAction::New
            }
            Some(ServerState::Trying { .. }) => ServerAction::Absorb,
            Some(ServerState::Completed { response, .. }) => ServerAction::Resend(response.clone()),
        }
    }

    /// Records the final response. Over a reliable transport the
    /// transaction ends now (Timer J is zero, §17.2.2).
    pub fn on_final(
        &mut self,
        key: &TransactionKey,
        response: Bytes,
        reliable: bool,
        now: Instant,
    ) {
        if reliable {
            self.map.remove(key);
        } else {
            self.map.insert(
                key.clone(),
                ServerState::Completed {
                    response,
                    until: now + self.timers.timeout(),
                },
            );
        }
    }

    /// Forgets a transaction whose request was dropped unanswered.
    pub fn forget(&mut self, key: &TransactionKey) {
        self.map.remove(key);
    }

    /// Drops completed transactions past Timer J, and handlers that never
    /// answered within it (so the map cannot grow without bound).
    pub fn expire(&mut self, now: Instant) {
        let limit = self.timers.timeout();
        self.map.retain(|_, state| match state {
            ServerState::Trying { since } => now.duration_since(*since) < limit,
            ServerState::Completed { until, .. } => now < *until,
        });
        // The table never shrinks by itself: after a burst it would hold its
        // peak size (tens of MB at a few thousand requests per second) for
        // good. Give it back once it is mostly empty; shrinking to twice the
        // entries leaves it under the threshold, so this does not repeat.
        if self.map.capacity() > SHRINK_ABOVE && self.map.capacity() > 4 * self.map.len() {
            self.map.shrink_to(2 * self.map.len());
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// What a client transaction's clock says to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTimeout {
    /// Timer E fired: send the request again.
    Retransmit,
    /// Timer F fired: the transaction failed with a timeout (408).
    TimedOut,
}

/// Timers E and F of one non-INVITE client transaction (§17.1.2.2).
#[derive(Debug, Clone)]
pub struct ClientSchedule {
    timers: Timers,
    /// Next Timer E firing; `None` over reliable transports.
    next_retransmit: Option<Instant>,
    interval: Duration,
    deadline: Instant,
}

impl ClientSchedule {
    pub fn new(timers: Timers, reliable: bool, now: Instant) -> Self {
        ClientSchedule {
            timers,
            next_retransmit: (!reliable).then(|| now + timers.t1),
            interval: timers.t1,
            deadline: now + timers.timeout(),
        }
    }

    /// When the caller must next call [`ClientSchedule::on_timeout`].
    pub fn poll_timeout(&self) -> Instant {
        match self.next_retransmit {
            Some(at) if at < self.deadline => at,
            _ => self.deadline,
        }
    }

    pub fn on_timeout(&mut self, now: Instant) -> Option<ClientTimeout> {
        if now >= self.deadline {
            return Some(ClientTimeout::TimedOut);
        }
        match self.next_retransmit {
            Some(at) if now >= at => {
                // Intervals double up to T2.
                self.interval = (self.interval * 2).min(self.timers.t2);
                self.next_retransmit = Some(now + self.interval);
                Some(ClientTimeout::Retransmit)
            }
            _ => None,
        }
    }

    /// A provisional response arrived: from now on retransmit every T2
    /// (§17.1.2.2, Proceeding state).
    pub fn on_provisional(&mut self, now: Instant) {
        if self.next_retransmit.is_some() {
            self.interval = self.timers.t2;
            self.next_retransmit = Some(now + self.timers.t2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: &str) -> TransactionKey {
        TransactionKey::Branch {
            branch: b.into(),
            sent_by: "h:5060".into(),
            method: "MESSAGE".into(),
        }
    }

    #[test]
    fn retransmissions_absorbed_then_answered_again_until_timer_j() {
        let t0 = Instant::now();
        let timers = Timers::default();
        let mut st = ServerTransactions::new(timers);
        assert_eq!(st.on_request(&key("z9hG4bK1"), t0), ServerAction::New);
        assert_eq!(st.on_request(&key("z9hG4bK1"), t0), ServerAction::Absorb);
        st.on_final(&key("z9hG4bK1"), Bytes::from_static(b"resp"), false, t0);
        assert_eq!(
            st.on_request(&key("z9hG4bK1"), t0 + Duration::from_secs(1)),
            ServerAction::Resend(Bytes::from_static(b"resp"))
        );
        st.expire(t0 + timers.timeout());
        assert!(st.is_empty());
        assert_eq!(
            st.on_request(&key("z9hG4bK1"), t0 + timers.timeout()),
            ServerAction::New
        );
    }

    #[test]
    fn table_shrinks_after_a_burst_has_expired() {
        let t0 = Instant::now();
        let timers = Timers::default();
        let mut st = ServerTransactions::new(timers);
        for i in 0..20_000 {
            st.on_request(&key(&format!("z9hG4bKb{i}")), t0);
        }
        let later = t0 + timers.timeout() / 2;
        st.on_request(&key("z9hG4bKlate"), later);
        st.expire(t0 + timers.timeout());
        assert_eq!(st.len(), 1);
        assert!(st.map.capacity() <= SHRINK_ABOVE, "{}", st.map.capacity());
        assert_eq!(
            st.on_request(&key("z9hG4bKlate"), later),
            ServerAction::Absorb
        );
    }

    #[test]
    fn reliable_transactions_end_at_the_final_response() {
        let t0 = Instant::now();
        let mut st = ServerTransactions::new(Timers::default());
        st.on_request(&key("z9hG4bK2"), t0);
        st.on_final(&key("z9hG4bK2"), Bytes::new(), true, t0);
        assert!(st.is_empty());
    }

    #[test]
    fn timer_e_doubles_to_t2_and_timer_f_ends() {
        let timers = Timers::default();
        let t0 = Instant::now();
        let mut c = ClientSchedule::new(timers, false, t0);
        let mut fired = Vec::new();
        let mut now = t0;
        loop {
            let next = c.poll_timeout();
            let gap = next.duration_since(now);
            now = next;
            match c.on_timeout(now) {
                Some(ClientTimeout::Retransmit) => fired.push(gap.as_millis()),
                Some(ClientTimeout::TimedOut) => break,
                None => {}
            }
        }
        assert_eq!(&fired[..5], &[500, 1000, 2000, 4000, 4000]);
        assert_eq!(now.duration_since(t0), Duration::from_secs(32));
    }

    #[test]
    fn reliable_client_only_times_out() {
        let timers = Timers::default();
        let t0 = Instant::now();
        let mut c = ClientSchedule::new(timers, true, t0);
        assert_eq!(c.poll_timeout(), t0 + Duration::from_secs(32));
        assert_eq!(c.on_timeout(t0 + Duration::from_secs(1)), None);
        assert_eq!(
            c.on_timeout(t0 + Duration::from_secs(32)),
            Some(ClientTimeout::TimedOut)
        );
    }

    #[test]
    fn provisional_moves_to_t2() {
        let timers = Timers::default();
        let t0 = Instant::now();
        let mut c = ClientSchedule::new(timers, false, t0);
        c.on_provisional(t0);
        assert_eq!(c.poll_timeout(), t0 + Duration::from_secs(4));
    }
}
