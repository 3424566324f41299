//! Test vocabulary for Herald's cross-process tests.
//!
//! Owns: starting real `herald` processes on 127.0.0.1:0 ([`Herald`]),
//! real `redis-server` processes on a free port ([`RedisServer`]) and
//! Redis Clusters of them ([`RedisCluster`]), whole Herald clusters of
//! edges and shards on either ([`TestCluster`]), scripted SIP user
//! agents that send raw wire bytes and read what comes back ([`UdpUa`],
//! [`TcpUa`], [`TlsUa`], [`WsUa`] over WS or WSS), test certificates made
//! at test time ([`TestTls`]), a runner for SIPp scenarios ([`Sipp`]),
//! and a DNS server whose SRV records tests change ([`DnsServer`]).
//!
//! Must never: sleep to wait for a condition (every wait has a deadline and
//! polls or blocks on the event itself), leave a child process behind (all
//! are killed on drop), or depend on a fixed port.
//!
//! The API is blocking on purpose: a test reads as the scenario it checks,
//! one step after the other, and the kernel's socket buffers keep what
//! arrives while the test does something else.
//!
//! ```no_run
//! use std::time::Duration;
//! use testkit::{Herald, secs};
//!
//! let herald = Herald::start(&[]).unwrap();
//! let mut alice = herald.udp_ua("alice").unwrap();
//! let mut bob = herald.udp_ua("bob").unwrap();
//! assert_eq!(bob.register(3600).unwrap().status, 200);
//! let msg = alice.message_request(&bob.aor(), "text/plain", "hi");
//! alice.send(&msg).unwrap();
//! let delivered = bob.recv_request(&sip::Method::Message, secs(5)).unwrap();
//! bob.respond(&delivered, 200).unwrap();
//! assert_eq!(alice.recv_response(&msg, secs(5)).unwrap().status, 200);
//! ```

pub mod cluster;
pub mod digest;
mod dns;
mod herald;
pub mod otlp;
pub mod presence;
mod redis;
mod sipp;
mod tls;
mod ua;
mod wait;
mod ws;

pub use cluster::{ClusterSpec, Redis, RedisKind, TestCluster};
pub use digest::{authorization, challenges, DigestChallenge};
pub use dns::DnsServer;
pub use herald::{Herald, HeraldProcess};
pub use otlp::{OtlpSink, ReceivedSpan};
pub use redis::{RedisCluster, RedisServer};
pub use sipp::{sipp_path, Sipp, SippOutcome, SippProcess};
pub use tls::{ReadWrite, TestTls, TlsConnection};
pub use ua::{
    distinct_call_ids, response_contacts, RawRequest, Received, Tcp, TcpUa, TlsUa, Transport, Ua,
    Udp, UdpUa, WsUa, DEFAULT_DOMAIN,
};
pub use wait::{eventually, millis, secs};
pub use ws::Ws;

/// `z9hG4bK` followed by random hex: a fresh RFC 3261 §8.1.1.7 branch.
pub fn fresh_branch() -> String {
    format!("{}{}", sip::BRANCH_COOKIE, random_hex(16))
}

/// Random lower-case hex of `len` characters (tags, Call-IDs).
pub fn random_hex(len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// Renders bytes for a failure message: text as is, control bytes escaped.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n\n"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}
