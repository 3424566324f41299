//! Socket loops. Each turns bytes from the network into calls to
//! [`crate::Edge::receive`] with the flow they came over.

pub(crate) mod tcp;
pub(crate) mod tls;
pub(crate) mod udp;
pub(crate) mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::flow::{Flow, FlowSender, Transport};
use crate::Edge;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Messages queued for one connection's writer before senders wait.
pub(crate) const WRITE_QUEUE: usize = 256;

/// Accepts connections until `shutdown`, running `connection` for each on
/// its own task.
pub(crate) async fn accept_loop<F, Fut>(
    edge: Arc<Edge>,
    listener: TcpListener,
    shutdown: CancellationToken,
    what: &'static str,
    connection: F,
) where
    F: Fn(Arc<Edge>, TcpStream, SocketAddr, CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, transport = what, "accept failed");
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        // Counted while open, whatever the transport; past the limit the
        // connection is closed before a byte is read.
        let Some(slot) = edge.flood.connections.open(remote.ip()) else {
            tracing::debug!(%remote, transport = what, "too many connections from this address, closing");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = connection(Arc::clone(&edge), stream, remote, shutdown.clone());
        // Counted in sip.connections.active while the connection lives.
        let open = telemetry::metrics().connection(what);
        tokio::spawn(async move {
            let (_slot, _open) = (slot, open);
            conn.await
        });
    }
}

/// Registers a new connection flow; its writer reads from the returned
/// receiver.
pub(crate) fn open_flow(
    edge: &Edge,
    transport: Transport,
    local: SocketAddr,
    remote: SocketAddr,
) -> (Flow, mpsc::Receiver<Bytes>) {
    let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let scheme = transport.name();
    let flow = Flow {
        transport,
        local,
        remote,
        token: edge.flows.token(format!("{scheme}/{id}/{remote}")),
        sender: FlowSender::Stream(tx),
    };
    edge.flows.add_stream(flow.clone());
    tracing::debug!(%remote, token = %flow.token, "connection open");
    (flow, rx)
}

/// A connection ended: services drop what lived on it, then the writer
/// gets a moment to send what is queued (it ends when the last sender,
/// held by in-flight tasks, is gone).
pub(crate) async fn close_flow(edge: &Edge, flow: Flow, writer: JoinHandle<()>) {
    edge.flows.remove_stream(&flow.token);
    edge.connection_closed(&flow.token).await;
    tracing::debug!(remote = %flow.remote, token = %flow.token, "connection closed");
    drop(flow);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}
