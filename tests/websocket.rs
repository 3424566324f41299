//! SIP over WebSocket (RFC 7118), as browser clients (SIP.js, JsSIP) use
//! it: the `sip` subprotocol is required and echoed, one SIP message per
//! frame, and requests to a client registered over its WebSocket reach it
//! over that same socket.

use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use sip::{Message, Method, Response};
use testkit::{secs, Herald};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::WebSocket;

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn free_port() -> Result<u16> {
    Ok(testkit::cluster::free_ports(1)?[0])
}

fn connect(port: u16, subprotocol: Option<&str>) -> Result<Ws> {
    let mut request = format!("ws://127.0.0.1:{port}").into_client_request()?;
    if let Some(p) = subprotocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse()?);
    }
    let (ws, response) = tungstenite::connect(request)?;
    ensure!(
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            == Some("sip"),
        "the server must select the sip subprotocol (RFC 7118 §4)"
    );
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
    }
    Ok(ws)
}

fn send(ws: &mut Ws, text: String) -> Result<()> {
    ws.send(tungstenite::Message::text(text))?;
    Ok(())
}

/// The next SIP message in a frame (pings and pongs skipped).
fn recv(ws: &mut Ws) -> Result<Message> {
    loop {
        match ws.read().context("reading the WebSocket")? {
            tungstenite::Message::Text(t) => {
                return Ok(sip::parse(t.as_bytes(), &sip::Limits::default())?)
            }
            tungstenite::Message::Binary(b) => return Ok(sip::parse(&b, &sip::Limits::default())?),
            tungstenite::Message::Close(_) => bail!("closed"),
            _ => continue,
        }
    }
}

fn register(branch: &str) -> String {
    format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bob@example.com>;tag=ws1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: ws-reg-{branch}\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:bob@df7jal23ls0d.invalid;transport=ws>\r\n\
         Expires: 600\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn a_browser_style_client_registers_and_receives_a_message_over_its_socket() -> Result<()> {
    let port = free_port()?;
    let herald = Herald::start(&["--ws-listen", &format!("127.0.0.1:{port}")])?;
    let mut bob = connect(port, Some("sip"))?;

    send(&mut bob, register("reg1"))?;
    let Message::Response(ok) = recv(&mut bob)? else {
        bail!("expected the REGISTER's response");
    };
    ensure!(
        ok.status == 200,
        "REGISTER over WS: {} {}",
        ok.status,
        ok.reason
    );

    // Alice on UDP writes to Bob: Herald sends it down Bob's WebSocket (his
    // contact's host is a .invalid name only the connection can reach).
    let mut alice = herald.udp_ua("alice")?;
    let msg = alice.message_request("sip:bob@example.com", "text/plain", "hello browser");
    alice.send(&msg)?;
    let Message::Request(delivered) = recv(&mut bob)? else {
        bail!("expected the MESSAGE");
    };
    ensure!(delivered.method == Method::Message);
    ensure!(&delivered.body[..] == b"hello browser");
    ensure!(
        delivered.headers.top_via()?.transport == "WS",
        "Herald's Via names the WS transport: {}",
        delivered.headers.top_via()?
    );
    let answer = Response::for_request(&delivered, 200);
    send(&mut bob, String::from_utf8(answer.to_bytes().to_vec())?)?;
    assert_eq!(alice.recv_response(&msg, secs(5))?.status, 200);
    Ok(())
}

#[test]
fn a_handshake_without_the_sip_subprotocol_is_refused() -> Result<()> {
    let port = free_port()?;
    let _herald = Herald::start(&["--ws-listen", &format!("127.0.0.1:{port}")])?;
    let refused = connect(port, None);
    ensure!(
        refused.is_err(),
        "a WebSocket without the sip subprotocol must be refused"
    );
    // A second protocol offered beside sip is fine.
    connect(port, Some("chat, sip"))?;
    Ok(())
}

#[test]
fn keep_alive_drops_a_silent_socket_and_keeps_a_live_one() -> Result<()> {
    let port = free_port()?;
    let _herald = Herald::start(&[
        "--ws-listen",
        &format!("127.0.0.1:{port}"),
        "--ws-ping-interval",
        "1",
    ])?;
    // The live client reads (tungstenite answers the server's pings while
    // reading); the silent one never reads, so never answers.
    let mut live = connect(port, Some("sip"))?;
    let mut silent = connect(port, Some("sip"))?;
    if let MaybeTlsStream::Plain(s) = live.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(200)))?;
    }
    let start = std::time::Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_millis(3500) {
        match live.read() {
            Ok(tungstenite::Message::Ping(_)) => pings += 1,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => bail!("the live socket was closed: {e}"),
        }
    }
    ensure!(pings >= 2, "the server pings every second, got {pings}");
    // The silent socket was dropped after two intervals without a word: what
    // is left to read ends in a close (or a reset), within the deadline.
    let mut closed = false;
    for _ in 0..50 {
        match silent.read() {
            Ok(tungstenite::Message::Close(_)) => {
                closed = true;
                break;
            }
            Ok(_) => continue,
            // Still open: nothing more arrived within the read timeout.
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    ensure!(closed, "the silent WebSocket must be closed by the server");
    // The live one still works: a REGISTER is answered.
    send(&mut live, register("alive"))?;
    if let MaybeTlsStream::Plain(s) = live.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
    }
    let Message::Response(ok) = recv(&mut live)? else {
        bail!("expected the REGISTER's response");
    };
    ensure!(ok.status == 200);
    Ok(())
}
