//! The Prometheus scrape endpoint: `/metrics` on the health address shows
//! the SIP request counters moving as traffic arrives.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use anyhow::{bail, ensure, Context, Result};
use testkit::cluster::free_ports;
use testkit::{secs, Herald};

/// `GET /metrics` over plain HTTP/1.1; the body.
fn scrape(addr: SocketAddr) -> Result<String> {
    let mut stream = TcpStream::connect(addr).context("connecting to the health address")?;
    stream.set_read_timeout(Some(secs(10)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        bail!("no HTTP response: {response}");
    };
    ensure!(head.starts_with("HTTP/1.1 200"), "scrape answered {head}");
    ensure!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "Prometheus text format: {head}"
    );
    Ok(body.to_string())
}

/// The sum of `sip_server_requests_total` samples whose labels include
/// all of `labels`.
fn requests(text: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("sip_server_requests_total{"))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn request_counters_move_after_traffic() -> Result<()> {
    let port = free_ports(1)?[0];
    let health = SocketAddr::from(([127, 0, 0, 1], port));
    let herald = Herald::start(&["--health-listen", &health.to_string()])?;

    let options = ["method=\"OPTIONS\"", "status=\"200\"", "transport=\"udp\""];
    let before = requests(&scrape(health)?, &options);

    let mut alice = herald.udp_ua("alice")?;
    for _ in 0..3 {
        ensure!(alice.options()?.status == 200);
    }
    ensure!(alice.register(600)?.status == 200);

    // The counter is recorded right after each answer is built.
    let text = testkit::eventually(secs(10), "the counters to move", || {
        let text = scrape(health)?;
        Ok((requests(&text, &options) >= before + 3.0).then_some(text))
    })?;
    ensure!(
        requests(&text, &["method=\"REGISTER\"", "status=\"200\""]) >= 1.0,
        "REGISTER counted: {text}"
    );
    ensure!(
        text.contains("# TYPE sip_server_requests_total counter"),
        "typed as a counter: {text}"
    );
    ensure!(
        text.contains("herald_registrations_active"),
        "registrations gauge present: {text}"
    );
    Ok(())
}
