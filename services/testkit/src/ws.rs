//! SIP over WebSocket for the scripted agents (RFC 7118): the `sip`
//! subprotocol, one message per frame, over plain TCP (WS) or TLS (WSS).

use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::Bytes;
use sip::Via;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use crate::tls::ReadWrite;
use crate::ua::{is_timeout, read_timeout, Transport, Ua, WsUa};

/// A WebSocket to the server that carries SIP.
pub struct Ws {
    socket: WebSocket<Box<dyn ReadWrite>>,
    /// The TCP socket under it (a second handle): timeouts, shutdown.
    tcp: TcpStream,
    secure: bool,
    local: SocketAddr,
    peer: SocketAddr,
}

impl Ws {
    fn open(stream: Box<dyn ReadWrite>, tcp: TcpStream, secure: bool) -> Result<Ws> {
        let local = tcp.local_addr()?;
        let peer = tcp.peer_addr()?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        let scheme = if secure { "wss" } else { "ws" };
        let mut request = format!("{scheme}://{peer}").into_client_request()?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "sip".parse()?);
        let (socket, response) = tungstenite::client::client(request, stream)
            .map_err(|e| anyhow!("WebSocket handshake with {peer}: {e}"))?;
        ensure!(
            response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok())
                == Some("sip"),
            "the server must select the sip subprotocol (RFC 7118 §4)"
        );
        Ok(Ws {
            socket,
            tcp,
            secure,
            local,
            peer,
        })
    }

    fn send_frame(&mut self, bytes: &[u8]) -> Result<()> {
        // SIP is text; anything that is not UTF-8 goes in a binary frame.
        let frame = match std::str::from_utf8(bytes) {
            Ok(text) => Message::text(text),
            Err(_) => Message::binary(bytes.to_vec()),
        };
        self.socket
            .send(frame)
            .with_context(|| format!("WebSocket send to {}", self.peer))
    }
}

impl Transport for Ws {
    fn via_transport(&self) -> &'static str {
        if self.secure {
            "WSS"
        } else {
            "WS"
        }
    }
    fn contact_param(&self) -> Option<&'static str> {
        // RFC 7118 §5.2: `ws` for both.
        Some("transport=ws")
    }
    fn local_addr(&self) -> SocketAddr {
        self.local
    }
    fn send_to_server(&mut self, bytes: &[u8]) -> Result<()> {
        self.send_frame(bytes)
    }
    fn send_response(&mut self, _via: Option<&Via>, bytes: &[u8]) -> Result<()> {
        self.send_frame(bytes)
    }
    fn recv_bytes(&mut self, deadline: Instant) -> Result<Option<(Bytes, SocketAddr)>> {
        loop {
            let Some(t) = read_timeout(deadline) else {
                return Ok(None);
            };
            self.tcp.set_read_timeout(Some(t))?;
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return Ok(Some((Bytes::from(text.as_str().to_owned()), self.peer)))
                }
                Ok(Message::Binary(data)) => return Ok(Some((data, self.peer))),
                // tungstenite answers pings itself while reading.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Ok(Message::Close(_)) => bail!("WebSocket closed by {}", self.peer),
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => return Ok(None),
                Err(e) => return Err(e).context("WebSocket recv"),
            }
        }
    }
}

impl Ua<Ws> {
    /// A WebSocket agent (plain WS) for `user@example.com`.
    pub fn connect_ws(user: &str, server: SocketAddr) -> Result<WsUa> {
        let tcp = TcpStream::connect_timeout(&server, Duration::from_secs(5))
            .with_context(|| format!("TCP connect to {server}"))?;
        tcp.set_nodelay(true)?;
        let ws = Ws::open(Box::new(tcp.try_clone()?), tcp, false)?;
        Ok(Ua::new(ws, user, server))
    }

    /// A secure WebSocket agent (WSS) for `user@example.com`, trusting
    /// only the test CA of `tls`.
    pub fn connect_wss(user: &str, server: SocketAddr, tls: &crate::TestTls) -> Result<WsUa> {
        let conn = tls.connect(server)?;
        let ws = Ws::open(Box::new(conn.stream), conn.socket, true)?;
        Ok(Ua::new(ws, user, server))
    }

    /// Closes the underlying connection.
    pub fn close_socket(&mut self) {
        let _ = self.transport_mut().tcp.shutdown(Shutdown::Both);
    }
}
