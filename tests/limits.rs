//! Limits that keep one client from taking the server from the others
//! (docs/decisions/0013-limits.md): requests per second per source
//! address and per user, connections per address, message size per
//! transport, subscriptions per watcher.
//!
//! A second client comes from another address: on Linux the whole of
//! 127.0.0.0/8 is loopback, so binding 127.0.0.2 is a second host.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use sip::{HeaderName, Message, Response};
use testkit::presence::PRESENCE;
use testkit::{eventually, secs, Herald, Transport, Ua, UdpUa};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;

const QUIET: Duration = Duration::from_millis(500);

fn second_host(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 2], port))
}

fn free_port() -> Result<u16> {
    Ok(testkit::cluster::free_ports(1)?[0])
}

/// Responses that arrive within `quiet` of each other, after a burst.
fn drain_responses(ua: &mut UdpUa, quiet: Duration) -> Vec<Response> {
    let mut out = Vec::new();
    while let Ok(Some(r)) = ua.try_next_where(quiet, |_| true) {
        if let Message::Response(resp) = r.message {
            out.push(resp);
        }
    }
    out
}

fn retry_after(r: &Response) -> Option<u32> {
    r.headers
        .get(&HeaderName::RetryAfter)
        .and_then(|v| v.trim().parse().ok())
}

/// A TCP connection from `local_ip` to `server`.
fn tcp_from(local_ip: [u8; 4], server: SocketAddr) -> Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((local_ip, 0)).into())?;
    socket.connect_timeout(&server.into(), secs(5))?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(secs(5)))?;
    Ok(stream)
}

fn raw_options(stream: &TcpStream, user: &str) -> Vec<u8> {
    let local = stream.local_addr().expect("local address");
    let branch = format!("z9hG4bK-{}", rand::random::<u64>());
    format!(
        "OPTIONS sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP {local};branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@example.com>;tag=lim\r\n\
         To: <sip:example.com>\r\n\
         Call-ID: {branch}@limits\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Sends an OPTIONS over a raw TCP stream and returns the status line.
fn options_over(stream: &mut TcpStream, user: &str) -> Result<String> {
    stream.write_all(&raw_options(stream, user))?;
    let mut buf = vec![0u8; 4096];
    let n = stream
        .read(&mut buf)
        .context("reading the OPTIONS answer")?;
    ensure!(
        n > 0,
        "the server closed the connection instead of answering"
    );
    let text = String::from_utf8_lossy(&buf[..n]);
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// The server closed `stream` (EOF or reset) within five seconds.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn a_udp_flood_from_one_address_is_limited_while_another_client_keeps_working() -> Result<()> {
    let herald = Herald::start(&[
        "--max-requests-per-ip",
        "20",
        "--max-requests-per-user",
        "0",
    ])?;
    let mut flooder = herald.udp_ua("mallory")?;
    let mut alice = UdpUa::bind_at("alice", second_host(0), herald.udp)?;

    const FLOOD: usize = 600;
    for _ in 0..FLOOD {
        let r = flooder.options_request();
        flooder.send(&r)?;
    }
    let answers = drain_responses(&mut flooder, QUIET);
    let ok = answers.iter().filter(|r| r.status == 200).count();
    let refused: Vec<&Response> = answers.iter().filter(|r| r.status == 503).collect();
    ensure!(
        !refused.is_empty(),
        "no 503 in {} answers to {FLOOD} OPTIONS",
        answers.len()
    );
    ensure!(
        refused
            .iter()
            .all(|r| retry_after(r).is_some_and(|s| s >= 1)),
        "every 503 carries Retry-After (RFC 3261 §21.5.4)"
    );
    ensure!(
        ok < FLOOD / 2,
        "the flood was not limited: {ok} of {FLOOD} served"
    );
    // Past twice the rate the flood is not even answered (UDP sources may
    // be forged; answering all would reflect the flood).
    ensure!(
        answers.len() < FLOOD,
        "every flood request was answered ({}); want silence past twice the rate",
        answers.len()
    );

    // Meanwhile a client on another address is served as usual.
    let r = alice.register(600)?;
    ensure!(
        r.status == 200,
        "REGISTER from 127.0.0.2: {} {}",
        r.status,
        r.reason
    );
    let r = alice.options()?;
    ensure!(
        r.status == 200,
        "OPTIONS from 127.0.0.2: {} {}",
        r.status,
        r.reason
    );

    // Once the flood stops the flooder's bucket refills.
    eventually(secs(10), "the flooder served again", || {
        let r = flooder.options_request();
        flooder.send(&r)?;
        Ok(flooder
            .try_next_where(
                QUIET,
                |m| matches!(&m.message, Message::Response(r) if r.status == 200),
            )?
            .map(|_| ()))
    })?;
    Ok(())
}

#[test]
fn a_flood_over_tcp_is_answered_503_never_dropped() -> Result<()> {
    let herald = Herald::start(&["--max-requests-per-ip", "5", "--max-requests-per-user", "0"])?;
    let mut ua = herald.tcp_ua("mallory")?;
    const FLOOD: usize = 80;
    for _ in 0..FLOOD {
        let r = ua.options_request();
        ua.send(&r)?;
    }
    let mut statuses = Vec::new();
    let deadline = Instant::now() + secs(10);
    while statuses.len() < FLOOD && Instant::now() < deadline {
        if let Some(r) = ua.try_next_where(secs(2), |_| true)? {
            if let Message::Response(resp) = r.message {
                ensure!(
                    resp.status != 503 || retry_after(&resp).is_some(),
                    "a 503 without Retry-After"
                );
                statuses.push(resp.status);
            }
        }
    }
    ensure!(
        statuses.len() == FLOOD,
        "over a connection every request is answered: {} of {FLOOD}",
        statuses.len()
    );
    ensure!(statuses.contains(&503), "no 503 in {statuses:?}");
    ensure!(statuses.contains(&200), "nothing served in {statuses:?}");
    Ok(())
}

#[test]
fn one_user_is_limited_while_another_user_from_the_same_address_is_not() -> Result<()> {
    let herald = Herald::start(&["--max-requests-per-ip", "0", "--max-requests-per-user", "5"])?;
    let mut mallory = herald.udp_ua("mallory")?;
    let mut alice = herald.udp_ua("alice")?;
    for _ in 0..100 {
        let r = mallory.options_request();
        mallory.send(&r)?;
    }
    let answers = drain_responses(&mut mallory, QUIET);
    ensure!(
        answers.iter().any(|r| r.status == 503),
        "no 503 for a user over --max-requests-per-user"
    );
    let r = alice.options()?;
    ensure!(
        r.status == 200,
        "another user, same address: {} {}",
        r.status,
        r.reason
    );
    Ok(())
}

#[test]
fn a_forged_from_cannot_spend_an_authenticated_users_budget() -> Result<()> {
    // With digest on, the per-user bucket is the authenticated user's:
    // requests that only claim to be Alice (OPTIONS needs no credentials)
    // do not count against her.
    let creds = herald_tests::CredentialsFile::with_users(&[("alice", "alice-pw")])?;
    let herald = herald_tests::start_with_auth(
        &creds,
        &["--max-requests-per-ip", "0", "--max-requests-per-user", "5"],
    )?;
    let mut forger = herald.udp_ua("alice")?;
    for _ in 0..100 {
        let r = forger.options_request();
        forger.send(&r)?;
    }
    let answers = drain_responses(&mut forger, QUIET);
    ensure!(
        answers.iter().all(|r| r.status == 200),
        "unauthenticated OPTIONS are not Alice's: {:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let mut alice = herald.udp_ua("alice")?;
    let register = alice.register_request(Some(600));
    let (_, r) = alice.transact_digest(&register, "alice-pw", "SHA-256")?;
    ensure!(
        r.status == 200,
        "the real Alice still registers: {} {}",
        r.status,
        r.reason
    );
    Ok(())
}

#[test]
fn connections_per_address_are_limited_while_open() -> Result<()> {
    let ws_port = free_port()?;
    let herald = Herald::start(&[
        "--max-connections-per-ip",
        "2",
        "--ws-listen",
        &format!("127.0.0.1:{ws_port}"),
    ])?;
    let mut first = tcp_from([127, 0, 0, 1], herald.tcp)?;
    let mut second = tcp_from([127, 0, 0, 1], herald.tcp)?;
    ensure!(
        options_over(&mut first, "a")?.contains(" 200 "),
        "first connection served"
    );
    ensure!(
        options_over(&mut second, "a")?.contains(" 200 "),
        "second connection served"
    );

    // A third, over TCP or WebSocket, is closed at once.
    let mut third = tcp_from([127, 0, 0, 1], herald.tcp)?;
    ensure!(
        closed_by_server(&mut third),
        "a third TCP connection from one address over --max-connections-per-ip 2"
    );
    let mut request = format!("ws://127.0.0.1:{ws_port}").into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse()?);
    ensure!(
        tungstenite::connect(request).is_err(),
        "a WebSocket counts with the TCP connections of its address"
    );

    // Another address has its own count.
    let mut other = tcp_from([127, 0, 0, 2], herald.tcp)?;
    ensure!(
        options_over(&mut other, "b")?.contains(" 200 "),
        "127.0.0.2 served"
    );

    // Closing one frees its place.
    drop(first);
    let mut again = eventually(secs(10), "a place freed by a closed connection", || {
        let mut s = tcp_from([127, 0, 0, 1], herald.tcp)?;
        Ok(options_over(&mut s, "a").ok().map(|_| s))
    })?;
    ensure!(
        options_over(&mut again, "a")?.contains(" 200 "),
        "served again"
    );
    Ok(())
}

/// Sends an OPTIONS with a `body`-byte body and returns its answer's status.
fn options_status<T: Transport>(ua: &mut Ua<T>, body: usize) -> Result<u16> {
    let raw = ua
        .raw_request("OPTIONS", "sip:example.com", "sip:example.com")
        .set("Content-Type", "text/plain")
        .body("x".repeat(body));
    ua.send_raw(&raw.to_bytes())?;
    let r = ua.next_where(secs(5), "the OPTIONS answer", |m| {
        matches!(&m.message, Message::Response(_))
    })?;
    let Message::Response(r) = r.message else {
        bail!("not a response")
    };
    Ok(r.status)
}

#[test]
fn message_size_is_limited_per_transport() -> Result<()> {
    let ws_port = free_port()?;
    let herald = Herald::start(&[
        "--max-udp-message-size",
        "2000",
        "--max-tcp-message-size",
        "3000",
        "--max-ws-message-size",
        "4000",
        "--ws-listen",
        &format!("127.0.0.1:{ws_port}"),
    ])?;

    // UDP: 413 past 2000 bytes, served below.
    let mut udp = herald.udp_ua("alice")?;
    for (body, want) in [(1500, 200), (2500, 413)] {
        let got = options_status(&mut udp, body)?;
        ensure!(got == want, "UDP body {body}: want {want}, got {got}");
    }

    // TCP: 2500 fits its 3000, 3500 gets 413 and the connection closes.
    let mut tcp = herald.tcp_ua("alice")?;
    for (body, want) in [(2500, 200), (3500, 413)] {
        let got = options_status(&mut tcp, body)?;
        ensure!(got == want, "TCP body {body}: want {want}, got {got}");
    }
    tcp.expect_closed(secs(5))
        .context("a stream whose framing is lost is closed")?;

    // WebSocket: 3500 fits its 4000; 5000 gets 413 on an open connection
    // (a frame is its own framing); past twice the limit it is closed.
    let mut request = format!("ws://127.0.0.1:{ws_port}").into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse()?);
    let (mut ws, _) = tungstenite::connect(request)?;
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(secs(5)))?;
    }
    let ws_options = |body: usize| -> String {
        let branch = format!("z9hG4bK-{}", rand::random::<u64>());
        format!(
            "OPTIONS sip:example.com SIP/2.0\r\n\
             Via: SIP/2.0/WS client.invalid;branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:alice@example.com>;tag=ws\r\n\
             To: <sip:example.com>\r\n\
             Call-ID: {branch}\r\n\
             CSeq: 1 OPTIONS\r\n\
             Content-Type: text/plain\r\n\
             Content-Length: {body}\r\n\r\n{}",
            "x".repeat(body)
        )
    };
    let ws_status =
        |ws: &mut tungstenite::WebSocket<MaybeTlsStream<TcpStream>>, body: usize| -> Result<u16> {
            ws.send(tungstenite::Message::text(ws_options(body)))?;
            loop {
                match ws.read()? {
                    tungstenite::Message::Text(t) => {
                        let m = sip::parse(t.as_bytes(), &sip::Limits::default())?;
                        if let Message::Response(r) = m {
                            return Ok(r.status);
                        }
                    }
                    tungstenite::Message::Close(_) => bail!("closed"),
                    _ => continue,
                }
            }
        };
    ensure!(
        ws_status(&mut ws, 3500)? == 200,
        "3500 bytes fit the WebSocket limit"
    );
    ensure!(
        ws_status(&mut ws, 5000)? == 413,
        "5000 bytes over the WebSocket limit"
    );
    ensure!(
        ws_status(&mut ws, 100)? == 200,
        "the connection stays open after a 413"
    );
    ensure!(
        ws_status(&mut ws, 9000).is_err(),
        "a frame past twice the limit ends the connection"
    );
    Ok(())
}

#[test]
fn subscriptions_per_watcher_are_limited() -> Result<()> {
    let herald = Herald::start(&["--max-subscriptions-per-watcher", "2"])?;
    let mut bob = herald.udp_ua("bob")?;
    let (mut first, _) = bob.watch("sip:alice@example.com", PRESENCE, 600, secs(5))?;
    let _second = bob.watch("sip:carol@example.com", PRESENCE, 600, secs(5))?;
    let (r, _) = bob.subscribe("sip:dave@example.com", PRESENCE, 600)?;
    ensure!(
        r.status == 403,
        "a third subscription over --max-subscriptions-per-watcher 2: want 403, got {} {}",
        r.status,
        r.reason
    );
    // Another watcher is not affected.
    let mut erin = herald.udp_ua("erin")?;
    erin.watch("sip:dave@example.com", PRESENCE, 600, secs(5))?;
    // Ending one subscription frees its place.
    let end = bob.subscribe_in_dialog_request(&mut first, 0);
    let r = bob.transact(&end)?;
    ensure!(r.status == 200, "unsubscribe: {} {}", r.status, r.reason);
    bob.watch("sip:dave@example.com", PRESENCE, 600, secs(5))?;
    Ok(())
}
