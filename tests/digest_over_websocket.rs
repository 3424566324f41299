//! Digest over SIP over WebSocket (RFC 7118), as a browser client meets
//! it: its REGISTER is challenged, answered with SHA-256 and accepted, and
//! a MESSAGE an authenticated sender writes to it comes down its socket.

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use herald_tests::{start_with_auth, CredentialsFile};
use sip::{Message, Method, Request, Response};
use testkit::{authorization, challenges};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::WebSocket;

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn connect(port: u16) -> Result<Ws> {
    let mut request = format!("ws://127.0.0.1:{port}").into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse()?);
    let (ws, _) = tungstenite::connect(request)?;
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
    }
    Ok(ws)
}

fn send(ws: &mut Ws, bytes: &[u8]) -> Result<()> {
    ws.send(tungstenite::Message::text(String::from_utf8(
        bytes.to_vec(),
    )?))?;
    Ok(())
}

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

fn register(cseq: u32, authorization: Option<&str>) -> Result<Request> {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let text = format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK-ws-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bob@example.com>;tag=ws1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: ws-digest-reg\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:bob@df7jal23ls0d.invalid;transport=ws>\r\n\
         Expires: 600\r\n\
         {auth}Content-Length: 0\r\n\r\n"
    );
    match sip::parse(text.as_bytes(), &sip::Limits::default())? {
        Message::Request(r) => Ok(r),
        Message::Response(_) => bail!("built a response"),
    }
}

fn response(ws: &mut Ws) -> Result<Response> {
    match recv(ws)? {
        Message::Response(r) => Ok(r),
        Message::Request(r) => bail!("expected a response, got {}", r.method),
    }
}

#[test]
fn a_websocket_client_registers_with_digest_and_gets_its_messages() -> Result<()> {
    let creds = CredentialsFile::with_users(&[("alice", "alice-pw"), ("bob", "bob-pw")])?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let herald = start_with_auth(&creds, &["--ws-listen", &format!("127.0.0.1:{port}")])?;
    let mut bob = connect(port)?;

    send(&mut bob, &register(1, None)?.to_bytes())?;
    let challenge = response(&mut bob)?;
    ensure!(
        challenge.status == 401,
        "REGISTER over WS: {}",
        challenge.status
    );
    let c = challenges(&challenge)
        .into_iter()
        .find(|c| c.algorithm == "SHA-256")
        .context("a SHA-256 challenge")?;
    let value = authorization(&c, "bob", "bob-pw", "REGISTER", "sip:example.com", 1);
    send(&mut bob, &register(2, Some(&value))?.to_bytes())?;
    let ok = response(&mut bob)?;
    ensure!(ok.status == 200, "answered REGISTER over WS: {}", ok.status);

    let mut alice = herald.udp_ua("alice")?;
    let msg = alice.message_request("sip:bob@example.com", "text/plain", "hello browser");
    let (sent, r) = std::thread::scope(|s| {
        let sender = s.spawn(|| alice.transact_digest(&msg, "alice-pw", "MD5"));
        let delivered = match recv(&mut bob)? {
            Message::Request(r) if r.method == Method::Message => r,
            other => bail!("expected the MESSAGE, got {other:?}"),
        };
        ensure!(&delivered.body[..] == b"hello browser");
        let answer = Response::for_request(&delivered, 200);
        send(&mut bob, &answer.to_bytes())?;
        sender.join().expect("sender thread")
    })?;
    ensure!(r.status == 200, "MESSAGE to the WS client: {}", r.status);
    ensure!(sent
        .headers
        .get(&sip::HeaderName::ProxyAuthorization)
        .is_some());
    Ok(())
}
