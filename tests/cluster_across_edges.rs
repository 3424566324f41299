//! The cluster (DESIGN.md §2-4) with real processes: two edges, two
//! presence shards, one messaging shard and a real redis-server, talking
//! gRPC. A PUBLISH through edge A reaches a watcher subscribed through edge
//! B; a MESSAGE from a user on edge A reaches a user registered on edge B;
//! and a presence shard killed with SIGKILL comes back with every
//! acknowledged publication and subscription.

use std::net::{SocketAddr, TcpListener};

use anyhow::{ensure, Context, Result};
use sip::Method;
use testkit::presence::{etag, pidf_tuple, PRESENCE};
use testkit::{secs, Herald, HeraldProcess, RedisServer, UdpUa};

/// Reserves `n` free TCP ports on 127.0.0.1 (every role must know every
/// other's address before it starts).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<_>>()?)
}

struct Cluster {
    redis: RedisServer,
    presence: Vec<HeraldProcess>,
    _messaging: HeraldProcess,
    edges: Vec<HeraldProcess>,
    presence_list: String,
    edge_list: String,
    presence_ports: Vec<u16>,
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn start_presence(
    id: usize,
    port: u16,
    list: &str,
    redis: &str,
    edges: &str,
) -> Result<HeraldProcess> {
    Herald::start(&[
        "presence",
        "--shard-id",
        &id.to_string(),
        "--presence-shards",
        list,
        "--grpc-listen",
        &format!("127.0.0.1:{port}"),
        "--redis",
        redis,
        "--edges",
        edges,
    ])
    .with_context(|| format!("presence shard {id}"))
}

impl Cluster {
    fn start() -> Result<Cluster> {
        let redis = RedisServer::start()?;
        let ports = free_ports(5)?;
        let (presence_ports, messaging_port, edge_ports) =
            (vec![ports[0], ports[1]], ports[2], vec![ports[3], ports[4]]);
        let presence_list = presence_ports
            .iter()
            .map(|p| url(*p))
            .collect::<Vec<_>>()
            .join(",");
        let messaging_list = url(messaging_port);
        let edge_list = edge_ports
            .iter()
            .map(|p| url(*p))
            .collect::<Vec<_>>()
            .join(",");
        let presence = (0..2)
            .map(|i| {
                start_presence(
                    i,
                    presence_ports[i],
                    &presence_list,
                    &redis.url(),
                    &edge_list,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let messaging = Herald::start(&[
            "messaging",
            "--shard-id",
            "0",
            "--messaging-shards",
            &messaging_list,
            "--grpc-listen",
            &format!("127.0.0.1:{messaging_port}"),
            "--redis",
            &redis.url(),
            "--edges",
            &edge_list,
        ])?;
        let edges = edge_ports
            .iter()
            .map(|port| {
                Herald::start(&[
                    "edge",
                    "--grpc-listen",
                    &format!("127.0.0.1:{port}"),
                    "--presence-shards",
                    &presence_list,
                    "--messaging-shards",
                    &messaging_list,
                ])
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Cluster {
            redis,
            presence,
            _messaging: messaging,
            edges,
            presence_list,
            edge_list,
            presence_ports,
        })
    }

    fn edge(&self, i: usize) -> SocketAddr {
        self.edges[i].udp
    }
}

#[test]
fn publish_through_one_edge_notifies_a_watcher_on_the_other() -> Result<()> {
    let cluster = Cluster::start()?;
    let mut alice = UdpUa::bind("alice", cluster.edge(0))?;
    let mut bob = UdpUa::bind("bob", cluster.edge(1))?;

    let (mut dialog, first) = bob.watch(&alice.aor(), PRESENCE, 600, secs(10))?;
    ensure!(
        first.is_offline()?,
        "nothing published yet: {}",
        first.body_text()
    );

    let r = alice.publish(
        &pidf_tuple(&alice.aor(), "phone", "open", Some("in the cluster")),
        600,
    )?;
    ensure!(
        r.status == 200,
        "PUBLISH via edge A: {} {}",
        r.status,
        r.reason
    );
    let notify = bob.recv_notify(&mut dialog, secs(10))?;
    ensure!(
        notify.body_text().contains("in the cluster"),
        "the watcher on edge B sees the new state: {}",
        notify.body_text()
    );
    Ok(())
}

#[test]
fn message_between_users_on_different_edges() -> Result<()> {
    let cluster = Cluster::start()?;
    let mut alice = UdpUa::bind("alice", cluster.edge(0))?;
    let mut bob = UdpUa::bind("bob", cluster.edge(1))?;
    assert_eq!(bob.register(3600)?.status, 200);

    let msg = alice.message_request(&bob.aor(), "text/plain", "across the cluster");
    alice.send(&msg)?;
    let delivered = bob.recv_request(&Method::Message, secs(10))?;
    ensure!(&delivered.body[..] == b"across the cluster");
    bob.respond(&delivered, 200)?;
    assert_eq!(alice.recv_response(&msg, secs(10))?.status, 200);

    // Offline: carol is not registered; the message waits in Redis and is
    // delivered when she registers through the other edge.
    let mut carol = UdpUa::bind("carol", cluster.edge(1))?;
    let stored = alice.message_request(&carol.aor(), "text/plain", "kept in redis");
    assert_eq!(alice.transact(&stored)?.status, 202);
    assert_eq!(carol.register(3600)?.status, 200);
    let later = carol.recv_request(&Method::Message, secs(10))?;
    ensure!(&later.body[..] == b"kept in redis");
    carol.respond(&later, 200)?;
    Ok(())
}

#[test]
fn a_killed_presence_shard_comes_back_with_its_state() -> Result<()> {
    let mut cluster = Cluster::start()?;
    let mut alice = UdpUa::bind("alice", cluster.edge(0))?;
    let mut bob = UdpUa::bind("bob", cluster.edge(1))?;
    let (mut dialog, _) = bob.watch(&alice.aor(), PRESENCE, 600, secs(10))?;
    let r = alice.publish(
        &pidf_tuple(&alice.aor(), "phone", "open", Some("before")),
        600,
    )?;
    ensure!(r.status == 200);
    let tag = etag(&r)?;
    bob.recv_notify(&mut dialog, secs(10))?;

    // SIGKILL both presence shards (whichever owns alice) and start them again.
    for shard in &mut cluster.presence {
        shard.kill()?;
    }
    let redis = cluster.redis.url();
    cluster.presence = (0..2)
        .map(|i| {
            start_presence(
                i,
                cluster.presence_ports[i],
                &cluster.presence_list,
                &redis,
                &cluster.edge_list,
            )
        })
        .collect::<Result<Vec<_>>>()?;

    // The acknowledged publication is still there: its entity tag works,
    // and the subscription still gets NOTIFYs with the next CSeq.
    let r = alice.publish_modify(
        &tag,
        &pidf_tuple(&alice.aor(), "phone", "closed", Some("after")),
        600,
    )?;
    ensure!(
        r.status == 200,
        "modify with the old tag after the restart: {} {}",
        r.status,
        r.reason
    );
    let notify = bob.recv_notify(&mut dialog, secs(10))?;
    ensure!(
        notify.body_text().contains("after"),
        "NOTIFYs resume after the restart: {}",
        notify.body_text()
    );
    Ok(())
}
