//! SIP over TCP (RFC 3261 §18.3 framing by Content-Length) with CRLF
//! keep-alives (RFC 5626 §3.5.1).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use sip::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::flow::{Flow, FlowSender, Transport};
use crate::Edge;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Messages queued for one connection's writer before senders wait.
const WRITE_QUEUE: usize = 256;

pub(crate) async fn serve(edge: Arc<Edge>, listener: TcpListener, shutdown: CancellationToken) {
    loop {
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "TCP accept failed");
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let edge = Arc::clone(&edge);
        let shutdown = shutdown.clone();
        tokio::spawn(async move { connection(edge, stream, remote, shutdown).await });
    }
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
    let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let flow = Flow {
        transport: Transport::Tcp,
        local,
        remote,
        token: edge.flows.token(format!("tcp/{id}/{remote}")),
        sender: FlowSender::Stream(tx),
    };
    edge.flows.add_stream(flow.clone());
    tracing::debug!(%remote, id, "TCP connection open");

    let (mut reader, mut writer) = stream.into_split();
    let writer_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });

    let limits = edge.config.limits.clone();
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
                    tracing::debug!(%remote, error = %e, "TCP framing error, closing");
                    let head = Bytes::copy_from_slice(&buf);
                    edge.reject_malformed(&head, &e, &flow).await;
                    break 'read;
                }
            }
        }
    }
    edge.flows.remove_stream(&flow.token);
    edge.connection_closed(&flow.token).await;
    drop(flow);
    // The writer ends when the last sender (held by the flow table and by
    // in-flight tasks) is gone; wait for it briefly so queued responses
    // go out.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer_task).await;
    tracing::debug!(%remote, id, "TCP connection closed");
}
