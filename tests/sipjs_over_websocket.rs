//! A real browser SIP stack against Herald: SIP.js (npm `sip.js`, driven in
//! Node with the `ws` package as its WebSocket) registers two users over
//! WebSocket, sends a MESSAGE from one to the other, subscribes to presence
//! and sees a PUBLISH (tests/sipjs/client.mjs). Skipped, saying so, only on
//! a machine without Node.js and npm.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use testkit::Herald;

fn on_path(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn sipjs_registers_messages_and_watches_presence_over_websocket() -> Result<()> {
    if !on_path("node") || !on_path("npm") {
        println!("skipped: node and npm are needed to run SIP.js");
        return Ok(());
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sipjs");
    if !dir.join("node_modules/sip.js").exists() {
        // The versions pinned in package-lock.json, from the npm registry.
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .context("running npm ci in tests/sipjs")?;
        ensure!(status.success(), "npm ci in tests/sipjs failed: {status}");
    }
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let _herald = Herald::start(&["--ws-listen", &format!("127.0.0.1:{port}")])?;

    let mut child = Command::new("node")
        .arg("client.mjs")
        .arg(port.to_string())
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting node")?;
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            bail!("the SIP.js client did not finish within 40 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        status.success() && stdout.contains("MESSAGE ok") && stdout.contains("PRESENCE ok"),
        "SIP.js client: {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    Ok(())
}
