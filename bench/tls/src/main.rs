//! Handshakes per second and requests per second over SIP over TLS and
//! secure WebSocket, compared with UDP, against one herald process.
//!
//! Run it through `bench/tls-bench.sh` (release builds, herald logging at
//! warn). Each measurement runs `clients` threads for `seconds`, every
//! thread closed-loop: the next handshake or request starts when the
//! previous one is done. The clients share the machine with herald, so
//! the numbers are what one box does end to end, not herald alone.
//!
//! Usage: tls-bench [clients] [seconds]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use testkit::{Herald, HeraldProcess, TestTls, Transport, Ua};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);
    let seconds: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let window = Duration::from_secs(seconds);

    let tls = Arc::new(TestTls::new()?);
    let herald = Arc::new(Herald::start_tls(&tls, &["--max-contacts", "1000"])?);
    println!("herald: {clients} clients, {seconds} s per line");
    println!("| what | transport | per second |");
    println!("|---|---|---:|");

    let row = |what: &str, transport: &str, n: u64| {
        println!(
            "| {what} | {transport} | {:.0} |",
            n as f64 / window.as_secs_f64()
        );
    };

    let tls_addr = herald.tls.context("no TLS listener")?;
    let wss_addr = herald.wss.context("no WSS listener")?;

    // Connection set-up: the TLS handshake, then the TLS handshake plus
    // the WebSocket upgrade. (UDP has none. A bare TCP connect loop is
    // not a useful floor here: nothing paces the client, the accept
    // backlog overflows and dropped SYNs are retried a second later.)
    let n = run(clients, window, |_| {
        let tls = Arc::clone(&tls);
        Ok(move || {
            tls.connect(tls_addr)?;
            Ok(())
        })
    })?;
    row("handshakes", "TLS", n);
    let n = run(clients, window, |_| {
        let tls = Arc::clone(&tls);
        Ok(move || {
            testkit::WsUa::connect_wss("hs", wss_addr, &tls)?;
            Ok(())
        })
    })?;
    row("handshakes + WebSocket upgrade", "WSS", n);

    // Requests on open connections: OPTIONS (answered by the edge alone)
    // and REGISTER refreshes (through the registrar and its store).
    for (what, register) in [("OPTIONS", false), ("REGISTER", true)] {
        let n = requests(clients, window, register, |i| {
            herald.udp_ua(&format!("u{i}"))
        })?;
        row(what, "UDP", n);
        let n = requests(clients, window, register, |i| {
            herald.tls_ua(&format!("t{i}"), &tls)
        })?;
        row(what, "TLS", n);
        let n = requests(clients, window, register, |i| {
            herald.wss_ua(&format!("w{i}"), &tls)
        })?;
        row(what, "WSS", n);
    }
    herald_alive(&herald)?;
    Ok(())
}

fn herald_alive(herald: &HeraldProcess) -> Result<()> {
    let mut ua = herald.udp_ua("check")?;
    ensure!(ua.options()?.status == 200, "herald stopped answering");
    Ok(())
}

/// Closed-loop OPTIONS or REGISTER on one agent per client thread.
fn requests<T, F>(clients: usize, window: Duration, register: bool, make: F) -> Result<u64>
where
    T: Transport + Send + 'static,
    F: Fn(usize) -> Result<Ua<T>>,
{
    run(clients, window, |i| {
        let mut ua = make(i)?;
        Ok(move || {
            let status = if register {
                ua.register(3600)?.status
            } else {
                ua.options()?.status
            };
            ensure!(status == 200, "got {status}");
            Ok(())
        })
    })
}

/// Runs `clients` threads, each repeating its operation until `window`
/// has passed; returns how many operations finished in total.
fn run<F, Op>(clients: usize, window: Duration, make: F) -> Result<u64>
where
    F: Fn(usize) -> Result<Op>,
    Op: FnMut() -> Result<()> + Send + 'static,
{
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut ops = Vec::new();
    for i in 0..clients {
        ops.push(make(i)?);
    }
    let start = Instant::now();
    let threads: Vec<_> = ops
        .into_iter()
        .map(|mut op| {
            let done = Arc::clone(&done);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || -> Result<()> {
                while !stop.load(Ordering::Relaxed) {
                    op()?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(window.saturating_sub(start.elapsed()));
    let n = done.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("a client panicked"))??;
    }
    Ok(n)
}
