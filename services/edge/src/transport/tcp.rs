//! SIP over TCP (RFC 3261 §18.3 framing by Content-Length) with CRLF
//! keep-alives (RFC 5626 §3.5.1).

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use sip::Frame;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::flow::Transport;
use crate::Edge;

pub(crate) async fn serve(edge: Arc<Edge>, listener: TcpListener, shutdown: CancellationToken) {
    super::accept_loop(edge, listener, shutdown, "tcp", connection).await;
}

async fn connection(
    edge: Arc<Edge>,
    stream: TcpStream,
    remote: std::net::SocketAddr,
    shutdown: CancellationToken,
) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    serve_stream(edge, stream, Transport::Tcp, local, remote, shutdown).await;
}

/// Serves one byte-stream connection (TCP, or TLS once the handshake is
/// done) as a flow: Content-Length framing in, the flow's queue out.
pub(crate) async fn serve_stream<S>(
    edge: Arc<Edge>,
    stream: S,
    transport: Transport,
    local: std::net::SocketAddr,
    remote: std::net::SocketAddr,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (flow, mut rx) = super::open_flow(&edge, transport, local, remote);

    let (mut reader, mut writer) = tokio::io::split(stream);
    let writer_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });

    let limits = edge.sip_limits(Transport::Tcp);
    let mut buf = BytesMut::with_capacity(4096);
    'read: loop {
        let n = tokio::select! {
            r = reader.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = n;
        loop {
            match sip::frame_stream(&buf, &limits) {
                Ok(Frame::Incomplete) => break,
                Ok(Frame::Ping(len)) => {
                    buf.advance(len);
                    // RFC 5626 §3.5.1: a double CRLF ping gets a single CRLF pong.
                    let _ = flow.send(Bytes::from_static(b"\r\n")).await;
                }
                Ok(Frame::Skip(len)) => buf.advance(len),
                Ok(Frame::Message(len)) => {
                    let bytes = buf.split_to(len).freeze();
                    let edge = Arc::clone(&edge);
                    let flow = flow.clone();
                    tokio::spawn(async move { edge.receive(bytes, flow).await });
                }
                Err(e) => {
                    // Framing is lost: answer what can be answered, then
                    // close (RFC 3261 §18.3).
                    tracing::debug!(%remote, error = %e, transport = transport.via_name(), "framing error, closing");
                    let head = Bytes::copy_from_slice(&buf);
                    edge.reject_malformed(&head, &e, &flow).await;
                    break 'read;
                }
            }
        }
    }
    super::close_flow(&edge, flow, writer_task).await;
}
