//! A real `herald` process on 127.0.0.1:0.
//!
//! The binary is `HERALD_BIN` when set, else built once per test process
//! with `cargo build -p herald --bin herald` (cargo's JSON messages say
//! where the executable is, whatever the target directory).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::ua::{TcpUa, TlsUa, UdpUa, WsUa};
use crate::TestTls;

/// How long `herald` may take from spawn to `ready`.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Lines of herald's output kept in memory and shown when a test fails.
const TAIL_LINES: usize = 200;

/// Starts Herald processes.
pub struct Herald;

impl Herald {
    /// Spawns `herald --sip-listen 127.0.0.1:0 <args>` and waits (at most
    /// 30 s) for it to print its listening lines and `ready`.
    pub fn start(args: &[&str]) -> Result<HeraldProcess> {
        let bin = herald_bin()?;
        HeraldProcess::spawn(&bin, args)
    }

    /// Like [`Herald::start`], with the server certificate of `tls`
    /// (`--tls-cert`, `--tls-key`): TLS and WSS listen on free ports too.
    pub fn start_tls(tls: &TestTls, args: &[&str]) -> Result<HeraldProcess> {
        let flags = tls.flags();
        let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        Self::start(&all)
    }

    /// The `herald` executable the tests run (built once when `HERALD_BIN`
    /// is unset), for tests that read its `--help` rather than start it.
    pub fn binary() -> Result<PathBuf> {
        herald_bin()
    }
}

impl Herald {
    /// Runs `herald <args>` to completion (a command such as `user add`,
    /// not a server), with `stdin` as its input; at most 30 s.
    pub fn run(args: &[&str], stdin: Option<&str>) -> Result<std::process::Output> {
        let bin = herald_bin()?;
        let mut child = Command::new(&bin)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        if let Some(mut input) = child.stdin.take() {
            if let Some(text) = stdin {
                input.write_all(text.as_bytes())?;
            }
        }
        let deadline = Instant::now() + READY_DEADLINE;
        while child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                bail!("herald {args:?} did not finish within {READY_DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(child.wait_with_output()?)
    }
}

/// A running herald. Killed on drop; when the test is failing, its last
/// output lines are printed (the test harness shows them with the failure)
/// and the whole log stays in `log_path()`.
pub struct HeraldProcess {
    child: Child,
    /// Where the UDP socket listens.
    pub udp: SocketAddr,
    /// Where the TCP listener listens.
    pub tcp: SocketAddr,
    /// Where the gRPC server listens (cluster roles), if any.
    pub grpc: Option<SocketAddr>,
    /// Where SIP over WebSocket listens, if it does.
    pub ws: Option<SocketAddr>,
    /// Where SIP over TLS listens (only with a certificate).
    pub tls: Option<SocketAddr>,
    /// Where SIP over secure WebSocket listens (only with a certificate).
    pub wss: Option<SocketAddr>,
    /// Where XCAP (HTTP) listens (`all`, `xcap`), if it does.
    pub xcap: Option<SocketAddr>,
    log_path: PathBuf,
    tail: Arc<Mutex<VecDeque<String>>>,
    /// The test stopped it (kill or SIGTERM): its exit is no news.
    stopped: bool,
}

impl HeraldProcess {
    fn spawn(bin: &Path, args: &[&str]) -> Result<HeraldProcess> {
        let log_path = log_file_path(bin);
        let log = Arc::new(Mutex::new(
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?,
        ));
        let tail = Arc::new(Mutex::new(VecDeque::new()));

        // Shards have no SIP sockets; every other role gets one on port 0
        // unless the test names its own (an edge restarted on its port).
        let shard = matches!(
            args.first(),
            Some(&"presence") | Some(&"messaging") | Some(&"xcap")
        );
        let own_sip = args
            .iter()
            .any(|a| *a == "--sip-listen" || a.starts_with("--sip-listen="));
        let mut cmd = Command::new(bin);
        if !shard && !own_sip {
            cmd.arg("--sip-listen").arg("127.0.0.1:0");
        }
        cmd.args(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "debug");
        }
        // Plain text in the log files.
        cmd.env("NO_COLOR", "1");
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let stdout = child.stdout.take().context("herald stdout")?;
        let stderr = child.stderr.take().context("herald stderr")?;

        if let Ok(mut f) = log.lock() {
            let _ = writeln!(
                f,
                "# {} {:?}",
                bin.display(),
                cmd.get_args().collect::<Vec<_>>()
            );
        }

        // stdout: lines go to the channel (for the start-up handshake) and to the log.
        let (tx, rx) = mpsc::channel::<String>();
        pump(stdout, "out", log.clone(), tail.clone(), Some(tx));
        pump(stderr, "err", log.clone(), tail.clone(), None);

        let mut proc = HeraldProcess {
            child,
            udp: SocketAddr::from(([0, 0, 0, 0], 0)),
            tcp: SocketAddr::from(([0, 0, 0, 0], 0)),
            grpc: None,
            ws: None,
            tls: None,
            wss: None,
            xcap: None,
            log_path,
            tail,
            stopped: false,
        };
        let ports = match wait_ready(&rx, !shard) {
            Ok(ports) => ports,
            Err(e) => {
                let status = proc.child.try_wait().ok().flatten();
                return Err(e.context(format!(
                    "herald did not become ready (exit status {:?}); its output:\n{}",
                    status,
                    proc.output_tail()
                )));
            }
        };
        proc.udp = ports.udp;
        proc.tcp = ports.tcp;
        proc.grpc = ports.grpc;
        proc.ws = ports.ws;
        proc.tls = ports.tls;
        proc.wss = ports.wss;
        proc.xcap = ports.xcap;
        Ok(proc)
    }

    /// A UDP user agent `user@example.com` talking to this herald.
    pub fn udp_ua(&self, user: &str) -> Result<UdpUa> {
        UdpUa::bind(user, self.udp)
    }

    /// A TCP user agent `user@example.com` connected to this herald.
    pub fn tcp_ua(&self, user: &str) -> Result<TcpUa> {
        TcpUa::connect(user, self.tcp)
    }

    /// A TLS user agent connected to this herald's TLS listener, trusting
    /// the test CA of `tls`.
    pub fn tls_ua(&self, user: &str, tls: &TestTls) -> Result<TlsUa> {
        let addr = self.tls.context("this herald has no TLS listener")?;
        TlsUa::connect_tls(user, addr, tls)
    }

    /// A secure WebSocket user agent connected to this herald's WSS
    /// listener, trusting the test CA of `tls`.
    pub fn wss_ua(&self, user: &str, tls: &TestTls) -> Result<WsUa> {
        let addr = self.wss.context("this herald has no WSS listener")?;
        WsUa::connect_wss(user, addr, tls)
    }

    /// A plain WebSocket user agent connected to this herald.
    pub fn ws_ua(&self, user: &str) -> Result<WsUa> {
        let addr = self.ws.context("this herald has no WebSocket listener")?;
        WsUa::connect_ws(user, addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits (at most `within`) for the process to exit.
    pub fn terminate(&mut self, within: Duration) -> Result<ExitStatus> {
        self.stopped = true;
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .context("running kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM {} failed: {status}", self.child.id());
        }
        self.wait_exit(within)
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        self.stopped = true;
        let _ = self.child.kill();
        Ok(self.child.wait()?)
    }

    /// Waits for the process to exit on its own, at most `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Result<ExitStatus> {
        crate::wait::eventually(within, "herald to exit", || Ok(self.child.try_wait()?))
    }

    /// The file that holds everything herald printed.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last lines herald printed (stdout and stderr, marked).
    pub fn output_tail(&self) -> String {
        self.output_tail_lines(TAIL_LINES)
    }

    fn output_tail_lines(&self, n: usize) -> String {
        match self.tail.lock() {
            Ok(t) => t
                .iter()
                .skip(t.len().saturating_sub(n))
                .map(|l| format!("{l}\n"))
                .collect(),
            Err(_) => String::new(),
        }
    }

    /// Whether the whole log (every line herald printed so far) holds
    /// `needle`: for checks such as "never panicked" that must not miss
    /// a line that scrolled out of the tail.
    pub fn log_contains(&self, needle: &str) -> Result<bool> {
        let text = std::fs::read(&self.log_path)
            .with_context(|| format!("reading {}", self.log_path.display()))?;
        Ok(String::from_utf8_lossy(&text).contains(needle))
    }

    /// Whether herald printed a line containing `needle` so far (only the
    /// last lines are kept).
    pub fn output_contains(&self, needle: &str) -> bool {
        self.tail
            .lock()
            .map(|t| t.iter().any(|l| l.contains(needle)))
            .unwrap_or(false)
    }
}

impl Drop for HeraldProcess {
    /// Kills herald. What is printed here is captured by the test harness
    /// and shown only when the test fails: always the log's path (a test
    /// returning `Err` is not panicking here), and on a panic or a crash
    /// the last lines too.
    fn drop(&mut self) {
        let exited = self
            .child
            .try_wait()
            .ok()
            .flatten()
            .filter(|_| !self.stopped);
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!(
            "herald pid {} (udp {}) log: {}{}",
            self.child.id(),
            self.udp,
            self.log_path.display(),
            match exited {
                Some(s) => format!(" (it had exited by itself: {s})"),
                None => String::new(),
            }
        );
        if std::thread::panicking() || exited.is_some() {
            eprintln!(
                "---- herald's last lines:\n{}----",
                self.output_tail_lines(60)
            );
        }
    }
}

/// Copies one output stream of the child into the log and the tail, and
/// (for stdout) into the start-up channel.
fn pump(
    stream: impl Read + Send + 'static,
    mark: &'static str,
    log: Arc<Mutex<File>>,
    tail: Arc<Mutex<VecDeque<String>>>,
    tx: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf).trim_end().to_string();
            if let Ok(mut f) = log.lock() {
                let _ = writeln!(f, "[{mark}] {line}");
            }
            if let Ok(mut t) = tail.lock() {
                if t.len() == TAIL_LINES {
                    t.pop_front();
                }
                t.push_back(format!("[{mark}] {line}"));
            }
            if let Some(tx) = &tx {
                let _ = tx.send(line);
            }
        }
    });
}

/// The listening addresses herald printed before `ready`.
struct Ports {
    udp: SocketAddr,
    tcp: SocketAddr,
    grpc: Option<SocketAddr>,
    ws: Option<SocketAddr>,
    tls: Option<SocketAddr>,
    wss: Option<SocketAddr>,
    xcap: Option<SocketAddr>,
}

/// Reads the start-up lines (`listening sip+udp A`, `listening sip+tcp A`,
/// ...) until `ready`: the UDP and TCP listeners are required when `sip`;
/// gRPC (cluster roles), WS, TLS and WSS are noted when present.
fn wait_ready(rx: &mpsc::Receiver<String>, sip: bool) -> Result<Ports> {
    let deadline = Instant::now() + READY_DEADLINE;
    let (mut udp, mut tcp) = (None, None);
    let none = SocketAddr::from(([0, 0, 0, 0], 0));
    let mut ports = Ports {
        udp: none,
        tcp: none,
        grpc: None,
        ws: None,
        tls: None,
        wss: None,
        xcap: None,
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("no `ready` line within {READY_DEADLINE:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("herald closed stdout before printing `ready`")
            }
        };
        let line = line.trim();
        if line == "ready" {
            return match (udp, tcp) {
                (Some(u), Some(t)) => Ok(Ports {
                    udp: u,
                    tcp: t,
                    ..ports
                }),
                _ if !sip => Ok(ports),
                _ => Err(anyhow!(
                    "`ready` before both listening lines (udp {udp:?}, tcp {tcp:?})"
                )),
            };
        }
        let Some(rest) = line.strip_prefix("listening ") else {
            continue;
        };
        let Some((what, addr)) = rest.split_once(' ') else {
            continue;
        };
        let slot = match what {
            "sip+udp" => &mut udp,
            "sip+tcp" => &mut tcp,
            "grpc" => &mut ports.grpc,
            "sip+ws" => &mut ports.ws,
            "sip+tls" => &mut ports.tls,
            "sip+wss" => &mut ports.wss,
            "xcap" => &mut ports.xcap,
            _ => continue,
        };
        // With several of a kind, the last one printed.
        *slot = Some(
            addr.trim()
                .parse()
                .with_context(|| format!("bad line {line:?}"))?,
        );
    }
}

/// Per-test log file beside the binary's target directory:
/// `<target>/debug/test-logs/<test name>-<pid>-<n>.log`.
fn log_file_path(bin: &Path) -> PathBuf {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let dir = bin
        .parent()
        .map(|d| d.join("test-logs"))
        .unwrap_or_else(|| std::env::temp_dir().join("herald-test-logs"));
    let _ = std::fs::create_dir_all(&dir);
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .replace("::", "-")
        .replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
            "_",
        );
    dir.join(format!(
        "{test}-{}-{}.log",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

fn herald_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("HERALD_BIN") {
        return Ok(PathBuf::from(bin));
    }
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| build_herald().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

/// The workspace root: testkit lives at `<root>/services/testkit`.
pub(crate) fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml"))
                .map(|s| s.contains("[workspace]"))
                .unwrap_or(false)
        })
        .unwrap_or(here)
        .to_path_buf()
}

fn build_herald() -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let root = workspace_root();
    let mut command = Command::new(&cargo);
    // `cargo test` gives the test process the variables of the package
    // under test (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, ...). Some build
    // scripts (ring's) rerun when those differ, so passing them on would
    // rebuild ring and all above it here, and again at the next build
    // from a shell: the inner build gets the environment a shell has.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_")
            || matches!(
                name,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            )
        {
            command.env_remove(name);
        }
    }
    let out = command
        .args([
            "build",
            "-p",
            "herald",
            "--bin",
            "herald",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(&root)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cargo:?} build -p herald"))?;
    if !out.status.success() {
        bail!(
            "cargo build -p herald failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        if !line.contains("\"compiler-artifact\"") {
            continue;
        }
        if let Some(exe) = json_string_field(line, "executable") {
            let path = PathBuf::from(exe);
            if path.file_name().is_some_and(|n| n == "herald") {
                return Ok(path);
            }
        }
    }
    // Fall back to the conventional place.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|t| root.join(t))
        .unwrap_or_else(|| root.join("target"));
    let path = target.join("debug").join("herald");
    if path.is_file() {
        return Ok(path);
    }
    bail!("cargo build -p herald succeeded but named no herald executable")
}

/// The value of `"name":"..."` in one line of cargo's JSON (paths hold no
/// escapes on the systems we run on; an escaped one is refused).
fn json_string_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\":\"");
    let start = line.find(&key)? + key.len();
    let len = line[start..].find('"')?;
    let value = &line[start..start + len];
    (!value.contains('\\')).then_some(value)
}
