//! A small authoritative DNS server on 127.0.0.1:0 (UDP), for shard lists
//! discovered from SRV records: what a Kubernetes headless service's DNS
//! answers, changed by the test while Herald runs.
//!
//! Built on hickory-proto's message codec (the same library Herald's
//! resolver uses to read the answers). It answers SRV and A queries for
//! the names it was given, NXDOMAIN for others, and counts SRV queries so
//! a test can tell whether a process asked again.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// TTL of every answer: Herald must not rely on caching to see changes.
const TTL: u32 = 1;

#[derive(Default)]
struct Zone {
    /// Lower-case name without the final dot -> (target, port).
    srv: HashMap<String, Vec<(String, u16)>>,
    a: HashMap<String, Ipv4Addr>,
}

/// A running DNS server; stops on drop.
pub struct DnsServer {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    srv_queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsServer {
    pub fn start() -> Result<DnsServer> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding the test DNS server")?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let addr = socket.local_addr()?;
        let zone = Arc::new(Mutex::new(Zone::default()));
        let srv_queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (zone, srv_queries, stop) = (zone.clone(), srv_queries.clone(), stop.clone());
            std::thread::spawn(move || serve(socket, zone, srv_queries, stop))
        };
        Ok(DnsServer {
            addr,
            zone,
            srv_queries,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens (Herald's `--dns-server`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the SRV records of `name` (an empty list removes them:
    /// the name then does not exist).
    pub fn set_srv(&self, name: &str, targets: &[(String, u16)]) {
        let mut zone = self.zone.lock().unwrap_or_else(|e| e.into_inner());
        if targets.is_empty() {
            zone.srv.remove(&key(name));
        } else {
            zone.srv.insert(key(name), targets.to_vec());
        }
    }

    /// Sets the A record of `name`.
    pub fn set_a(&self, name: &str, ip: Ipv4Addr) {
        let mut zone = self.zone.lock().unwrap_or_else(|e| e.into_inner());
        zone.a.insert(key(name), ip);
    }

    /// SRV queries answered so far.
    pub fn srv_queries(&self) -> usize {
        self.srv_queries.load(Ordering::SeqCst)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    socket: UdpSocket,
    zone: Arc<Mutex<Zone>>,
    srv_queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Ok(request) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let response = answer(&request, &zone, &srv_queries);
        if let Ok(bytes) = response.to_vec() {
            let _ = socket.send_to(&bytes, from);
        }
    }
}

fn answer(request: &Message, zone: &Mutex<Zone>, srv_queries: &AtomicUsize) -> Message {
    let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    let zone = zone.lock().unwrap_or_else(|e| e.into_inner());
    let mut known = false;
    for query in &request.queries {
        response.add_query(query.clone());
        let name = query.name().clone();
        let k = key(&name.to_ascii());
        match query.query_type() {
            RecordType::SRV => {
                srv_queries.fetch_add(1, Ordering::SeqCst);
                if let Some(targets) = zone.srv.get(&k) {
                    known = true;
                    for (target, port) in targets {
                        let Ok(target) = Name::from_ascii(format!("{target}.")) else {
                            continue;
                        };
                        response.add_answer(Record::from_rdata(
                            name.clone(),
                            TTL,
                            RData::SRV(SRV::new(0, 0, *port, target)),
                        ));
                    }
                }
            }
            RecordType::A => {
                if let Some(ip) = zone.a.get(&k) {
                    known = true;
                    response.add_answer(Record::from_rdata(name.clone(), TTL, RData::A(A(*ip))));
                }
            }
            _ => {}
        }
        known |= zone.srv.contains_key(&k) || zone.a.contains_key(&k);
    }
    if !known {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    response
}
