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
}

impl Transport {
    /// The Via transport token.
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
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
#[derive(Default)]
pub struct FlowTable {
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
            token: FlowToken(format!("udp/{local}/{remote}")),
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
        if let Some(rest) = token.0.strip_prefix("udp/") {
            let (local, remote) = rest.split_once('/')?;
            let local: SocketAddr = local.parse().ok()?;
            let remote: SocketAddr = remote.parse().ok()?;
            let socket = self
                .udp
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&local)
                .cloned()?;
            return Some(self.udp_flow(&socket, local, remote));
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
