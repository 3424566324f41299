//! Flows: the transport paths clients reach Herald over (RFC 5626 §3).
//! A UDP flow is the pair of addresses; a connection flow lives as long as
//! its connection. The [`FlowToken`] string names either so services can
//! hand it back for requests to that client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use store::FlowToken;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// A transport Herald speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    /// SIP over WebSocket (RFC 7118), one message per frame.
    Ws,
    /// SIP over TLS (RFC 3261 §26.2), framed like TCP.
    Tls,
    /// SIP over secure WebSocket (RFC 7118 §5): WebSocket over TLS.
    Wss,
}

impl Transport {
    /// The Via transport token.
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Ws => "WS",
            Transport::Tls => "TLS",
            Transport::Wss => "WSS",
        }
    }
    /// Lower-case name: the token in flow names (`tls/7/1.2.3.4:5`), and
    /// the transport label of metrics and traces.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Ws => "ws",
            Transport::Tls => "tls",
            Transport::Wss => "wss",
        }
    }
    /// Whether this hop is protected by TLS (RFC 3261 §26.2.2: what a
    /// SIPS URI asks for).
    pub fn secure(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }
    pub fn reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// Where a message came from and how to answer it.
#[derive(Clone)]
pub struct Flow {
    pub transport: Transport,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub token: FlowToken,
    pub(crate) sender: FlowSender,
}

#[derive(Clone)]
pub(crate) enum FlowSender {
    Udp(Arc<UdpSocket>),
    /// The writer task of a connection.
    Stream(mpsc::Sender<Bytes>),
}

impl Flow {
    /// Sends bytes over this flow: to the flow's remote address for UDP,
    /// down the connection otherwise.
    pub async fn send(&self, bytes: Bytes) -> Result<(), String> {
        self.send_to(bytes, self.remote).await
    }

    /// Sends bytes; over UDP to `addr` (responses follow the Via, RFC 3261
    /// §18.2.2), over a connection to its peer whatever `addr` says.
    pub async fn send_to(&self, bytes: Bytes, addr: SocketAddr) -> Result<(), String> {
        match &self.sender {
            FlowSender::Udp(socket) => socket
                .send_to(&bytes, addr)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            FlowSender::Stream(tx) => tx.send(bytes).await.map_err(|_| "connection closed".into()),
        }
    }
}

/// Flows this edge can send on, by token.
///
/// In a cluster a token starts with the owning edge's address and `#`
/// (`http://10.0.0.5:7100#udp/...`) so a shard knows which edge to ask.
/// A UDP flow needs no connection, so any edge can serve another edge's
/// UDP token (from its own socket) when that edge is gone.
#[derive(Default)]
pub struct FlowTable {
    /// This edge's address as shards reach it; empty in one process.
    owner: String,
    udp: Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>,
    streams: Mutex<HashMap<String, Flow>>,
}

impl FlowTable {
    pub(crate) fn add_udp_socket(&self, socket: Arc<UdpSocket>) -> std::io::Result<()> {
        let local = socket.local_addr()?;
        self.udp
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(local, socket);
        Ok(())
    }

    pub(crate) fn with_owner(owner: Option<String>) -> FlowTable {
        FlowTable {
            owner: owner.unwrap_or_default(),
            ..FlowTable::default()
        }
    }

    /// A token for a flow of this edge.
    pub(crate) fn token(&self, path: String) -> FlowToken {
        if self.owner.is_empty() {
            FlowToken(path)
        } else {
            FlowToken(format!("{}#{path}", self.owner))
        }
    }

    /// The flow of a datagram from `remote` to the socket bound at `local`.
    pub(crate) fn udp_flow(
        &self,
        socket: &Arc<UdpSocket>,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Flow {
        Flow {
            transport: Transport::Udp,
            local,
            remote,
            token: self.token(format!("udp/{local}/{remote}")),
            sender: FlowSender::Udp(Arc::clone(socket)),
        }
    }

    pub(crate) fn add_stream(&self, flow: Flow) {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(flow.token.0.clone(), flow);
    }

    pub(crate) fn remove_stream(&self, token: &FlowToken) {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&token.0);
    }

    /// The flow a token names, if this edge still has it.
    pub fn get(&self, token: &FlowToken) -> Option<Flow> {
        let path = match token.0.split_once('#') {
            Some((_, path)) => path,
            None => token.0.as_str(),
        };
        if let Some(rest) = path.strip_prefix("udp/") {
            let (local, remote) = rest.split_once('/')?;
            let local: SocketAddr = local.parse().ok()?;
            let remote: SocketAddr = remote.parse().ok()?;
            let sockets = self.udp.lock().unwrap_or_else(|e| e.into_inner());
            // The socket the flow came in on, or (another edge's flow, or
            // ours before a restart) any socket of the same address family.
            let (local, socket) = match sockets.get(&local) {
                Some(socket) => (local, Arc::clone(socket)),
                None => sockets
                    .iter()
                    .find(|(addr, _)| addr.is_ipv4() == remote.is_ipv4())
                    .map(|(addr, socket)| (*addr, Arc::clone(socket)))?,
            };
            // The token stays as given (it may name another edge).
            return Some(Flow {
                transport: Transport::Udp,
                local,
                remote,
                token: token.clone(),
                sender: FlowSender::Udp(socket),
            });
        }
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&token.0)
            .cloned()
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}
