//! A private `redis-server` on a free port, nothing persisted; and a
//! private Redis Cluster of such servers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::wait::eventually;

/// A running `redis-server`, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts `redis-server --port N --save "" --appendonly no` on a port
    /// the kernel just handed out, and waits (at most 10 s) until it
    /// answers PING. Another process may take the port between our probe
    /// and Redis binding it: then it is tried again on a new port.
    pub fn start() -> Result<RedisServer> {
        Self::start_with(&[])
    }

    /// As [`RedisServer::start`], with extra arguments (for example
    /// `--cluster-enabled yes`).
    pub fn start_with(extra: &[&str]) -> Result<RedisServer> {
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(extra) {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("three attempts made"))
    }

    fn try_start(extra: &[&str]) -> Result<RedisServer> {
        let port = crate::cluster::free_ports(1)?[0];
        let dir = std::env::temp_dir().join(format!(
            "herald-testkit-redis-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let child = spawn(port, &dir, &extra)?;
        let mut server = RedisServer {
            child,
            port,
            dir,
            extra,
        };
        server.wait_for_ping()?;
        Ok(server)
    }

    fn wait_for_ping(&mut self) -> Result<()> {
        let port = self.port;
        eventually(
            Duration::from_secs(10),
            "redis-server to answer PING",
            || {
                if let Some(status) = self.child.try_wait()? {
                    bail!("redis-server on port {port} exited: {status}");
                }
                Ok(ping(self.addr()).then_some(()))
            },
        )
    }

    /// Starts the server again on the same port with the same arguments
    /// (after [`RedisServer::kill`]; a running one is killed first), and
    /// waits until it answers PING. Nothing was persisted, so it starts
    /// empty. Fails if another process took the port meanwhile.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.child = spawn(self.port, &self.dir, &self.extra)?;
        self.wait_for_ping()
    }

    /// Stops the process without closing its sockets (SIGSTOP): a Redis
    /// that accepts and never answers, as a hung server does.
    pub fn pause(&mut self) -> Result<()> {
        signal(&self.child, "-STOP")
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&mut self) -> Result<()> {
        signal(&self.child, "-CONT")
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Runs `redis-cli -p <port> <args>` against this server (for example
    /// `CONFIG SET min-replicas-to-write 1`, which makes it refuse every
    /// write while it still answers reads) and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        cli(self.port, args)
    }

    /// `redis://127.0.0.1:N`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL), for failure tests.
    pub fn kill(&mut self) {
        // A paused process dies of SIGKILL too.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(port: u16, dir: &Path, extra: &[String]) -> Result<Child> {
    Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning redis-server (Debian package redis-server)")
}

fn signal(child: &Child, which: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(which)
        .arg(child.id().to_string())
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill {which} {} failed: {status}", child.id());
    }
    Ok(())
}

/// A Redis Cluster of masters only (no replicas), each a [`RedisServer`]
/// on its own free port with its own directory (`nodes.conf` in it),
/// all killed on drop.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` (at least 3, Redis's minimum) cluster-enabled
    /// servers, joins them with `redis-cli --cluster create
    /// --cluster-replicas 0 --cluster-yes`, and waits (at most 20 s) until
    /// every node reports `cluster_state:ok` with all 16384 slots served.
    pub fn start(masters: usize) -> Result<RedisCluster> {
        if masters < 3 {
            bail!("a Redis Cluster needs at least 3 masters, asked for {masters}");
        }
        let nodes = (0..masters)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ])
            })
            .collect::<Result<Vec<_>>>()?;
        let cluster = RedisCluster { nodes };
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(cluster.nodes.iter().map(|n| n.addr().to_string()))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .context("running redis-cli --cluster create")?;
        if !output.status.success() {
            bail!(
                "redis-cli --cluster create failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        eventually(
            Duration::from_secs(20),
            "every cluster node to report cluster_state:ok",
            || {
                for node in &cluster.nodes {
                    let info = cli(node.port, &["cluster", "info"])?;
                    if !info.contains("cluster_state:ok")
                        || !info.contains("cluster_slots_ok:16384")
                    {
                        return Ok(None);
                    }
                }
                Ok(Some(()))
            },
        )?;
        Ok(cluster)
    }

    /// `redis://127.0.0.1:N` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// `redis+cluster://127.0.0.1:N1,127.0.0.1:N2,...`: Herald's form for
    /// the seed nodes of a cluster.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|n| n.addr().to_string()).collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// Runs `redis-cli -p <first node> -c <args>` (following redirections)
    /// and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-c"];
        all.extend_from_slice(args);
        cli(self.nodes[0].port, &all)
    }
}

/// Runs `redis-cli -h 127.0.0.1 -p <port> <args>`; its output.
fn cli(port: u16, args: &[&str]) -> Result<String> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running redis-cli")?;
    if !output.status.success() {
        bail!(
            "redis-cli {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ping(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}
