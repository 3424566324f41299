//! A private `redis-server` on a free port, nothing persisted.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::wait::eventually;

/// A running `redis-server`, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    dir: PathBuf,
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
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!(
            "herald-testkit-redis-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(extra)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning redis-server (Debian package redis-server)")?;
        let mut server = RedisServer { child, port, dir };
        eventually(
            Duration::from_secs(10),
            "redis-server to answer PING",
            || {
                if let Some(status) = server.child.try_wait()? {
                    bail!("redis-server on port {port} exited: {status}");
                }
                Ok(ping(server.addr()).then_some(()))
            },
        )?;
        Ok(server)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:N`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL), for failure tests.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
