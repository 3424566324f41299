//! Nonces are stateless (HMAC-signed with --nonce-secret): a challenge
//! from one edge is answered through another edge of the cluster, as a
//! UDP client whose first edge went away does.

use anyhow::{ensure, Context, Result};
use herald_tests::{CredentialsFile, REALM};
use testkit::{authorization, challenges, ClusterSpec, RedisKind, TestCluster, UdpUa};

#[test]
fn a_nonce_from_one_edge_is_good_on_another() -> Result<()> {
    let creds = CredentialsFile::with_users(&[("alice", "alice-pw")])?;
    let file = creds.path.display().to_string();
    let spec = ClusterSpec::new(1, 1, 2, RedisKind::Standalone).edge_args(&[
        "--realm",
        REALM,
        "--credentials",
        &file,
        "--nonce-secret",
        "shared by every edge of this test",
    ]);
    let cluster = TestCluster::start_with(spec)?;
    let mut alice = UdpUa::bind("alice", cluster.edge(0))?;

    let r = alice.fetch_bindings()?;
    ensure!(r.status == 401, "edge 0 challenges: {}", r.status);
    let c = challenges(&r)
        .into_iter()
        .find(|c| c.algorithm == "SHA-256")
        .context("SHA-256 challenge")?;

    alice.set_server(cluster.edge(1));
    let req = alice.register_request(Some(600));
    let value = authorization(&c, "alice", "alice-pw", "REGISTER", &req.uri.to_string(), 1);
    let again = alice.with_credentials(&req, 401, &value);
    let r = alice.transact(&again)?;
    ensure!(
        r.status == 200,
        "edge 1 accepts edge 0's nonce: {}",
        r.status
    );
    Ok(())
}
