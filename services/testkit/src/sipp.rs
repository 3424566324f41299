//! Running SIPp scenarios (Debian package `sip-tester`, binary `sipp`).
//!
//! Each run gets its own working directory (SIPp writes its logs to the
//! current directory) and a statistics file (`-trace_stat -stf`) from
//! which the final successful and failed call counts are read.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::wait::eventually;

/// `sipp` on PATH, if installed.
pub fn sipp_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("sipp"))
        .find(|p| p.is_file())
}

/// A SIPp invocation being put together.
pub struct Sipp {
    scenario: PathBuf,
    args: Vec<OsString>,
}

/// How a SIPp run ended.
#[derive(Debug)]
pub struct SippOutcome {
    /// 0: every call succeeded; 1: at least one failed; 97: stopped by a
    /// command; 99: exited with no call processed; 255/254: fatal.
    pub status: ExitStatus,
    /// `SuccessfulCall(C)` of the last statistics row.
    pub successful: Option<u64>,
    /// `FailedCall(C)` of the last statistics row.
    pub failed: Option<u64>,
    pub stdout: String,
    pub stderr: String,
    /// The working directory with SIPp's logs and statistics.
    pub dir: PathBuf,
}

impl SippOutcome {
    /// Everything worth showing when a test fails.
    pub fn report(&self) -> String {
        let errors = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect::<Vec<_>>()
            .join("\n");
        format!(
            "sipp exit {:?}, successful {:?}, failed {:?}\n--- stdout (tail)\n{}\n--- stderr\n{}\n--- errors log\n{}",
            self.status.code(),
            self.successful,
            self.failed,
            tail(&self.stdout, 3000),
            self.stderr,
            tail(&errors, 3000)
        )
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

impl Sipp {
    /// `sipp -sf <scenario>`; add the remote host and options with
    /// [`Sipp::arg`]. `-nostdin` and the statistics options are added.
    pub fn new(scenario: impl AsRef<Path>) -> Sipp {
        Sipp {
            scenario: scenario.as_ref().to_path_buf(),
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Sipp {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Sipp
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Starts SIPp in the background (for a UAS the test then drives).
    pub fn spawn(self) -> Result<SippProcess> {
        let Some(bin) = sipp_path() else {
            bail!("sipp is not installed (Debian package sip-tester)");
        };
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "herald-testkit-sipp-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let scenario = std::fs::canonicalize(&self.scenario)
            .with_context(|| format!("scenario {}", self.scenario.display()))?;
        let child = Command::new(bin)
            .arg("-sf")
            .arg(&scenario)
            .args(&self.args)
            .args(["-nostdin", "-trace_stat", "-stf", "stats.csv", "-trace_err"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(dir.join("stdout.txt"))?))
            .stderr(Stdio::from(std::fs::File::create(dir.join("stderr.txt"))?))
            .spawn()
            .context("spawning sipp")?;
        Ok(SippProcess {
            child: Some(child),
            dir,
        })
    }

    /// Runs SIPp to the end, at most `within` (then it is killed and this
    /// is an error).
    pub fn run(self, within: Duration) -> Result<SippOutcome> {
        self.spawn()?.wait(within)
    }
}

/// A SIPp running in the background; killed on drop.
pub struct SippProcess {
    child: Option<Child>,
    dir: PathBuf,
}

impl SippProcess {
    /// Fails with SIPp's output if it has already exited (for example on
    /// a scenario error or a port it could not bind).
    pub fn ensure_running(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("sipp already waited for");
        };
        if let Some(status) = child.try_wait()? {
            let out = std::fs::read_to_string(self.dir.join("stdout.txt")).unwrap_or_default();
            let err = std::fs::read_to_string(self.dir.join("stderr.txt")).unwrap_or_default();
            bail!(
                "sipp exited early ({status}):\n{}\n{}",
                tail(&out, 3000),
                tail(&err, 3000)
            );
        }
        Ok(())
    }

    /// Waits for SIPp to exit (at most `within`) and reads its results.
    pub fn wait(mut self, within: Duration) -> Result<SippOutcome> {
        let mut child = self.child.take().context("sipp already waited for")?;
        let waited = eventually(within, "sipp to finish", || Ok(child.try_wait()?));
        let status = match waited {
            Ok(s) => s,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let out = std::fs::read_to_string(self.dir.join("stdout.txt")).unwrap_or_default();
                return Err(e.context(format!("sipp output:\n{}", tail(&out, 3000))));
            }
        };
        let stdout = std::fs::read_to_string(self.dir.join("stdout.txt")).unwrap_or_default();
        let stderr = std::fs::read_to_string(self.dir.join("stderr.txt")).unwrap_or_default();
        let stats = std::fs::read_to_string(self.dir.join("stats.csv")).unwrap_or_default();
        Ok(SippOutcome {
            status,
            successful: stat(&stats, "SuccessfulCall(C)"),
            failed: stat(&stats, "FailedCall(C)"),
            stdout,
            stderr,
            dir: self.dir.clone(),
        })
    }
}

impl Drop for SippProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A column of the last row of SIPp's `;`-separated statistics file.
fn stat(csv: &str, column: &str) -> Option<u64> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split(';').collect();
    let last: Vec<&str> = lines.next_back()?.split(';').collect();
    let i = header.iter().position(|h| h.trim() == column)?;
    last.get(i)?.trim().parse().ok()
}
