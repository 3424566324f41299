//! SIP over UDP (RFC 3261 §18): one datagram, one message.

use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::Edge;

/// Largest datagram read; anything longer is truncated by the kernel and
/// then fails Content-Length or size checks.
const MAX_DATAGRAM: usize = 65_535;

pub(crate) async fn serve(edge: Arc<Edge>, socket: Arc<UdpSocket>, shutdown: CancellationToken) {
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "UDP socket has no local address");
            return;
        }
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, remote) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors surface here on some systems; keep serving.
                    tracing::debug!(error = %e, "UDP receive error");
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let bytes = Bytes::copy_from_slice(&buf[..len]);
        let flow = edge.flows.udp_flow(&socket, local, remote);
        let edge = Arc::clone(&edge);
        // Each request is handled on its own task: a slow delivery must not
        // hold up the socket.
        tokio::spawn(async move { edge.receive(bytes, flow).await });
    }
}
