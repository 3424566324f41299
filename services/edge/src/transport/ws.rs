//! SIP over WebSocket (RFC 7118): the `sip` subprotocol, one SIP message
//! per frame (no Content-Length framing), the connection a flow like TCP's
//! so NOTIFYs and MESSAGEs reach a browser over its socket.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::flow::Transport;
use crate::Edge;

pub(crate) async fn serve(edge: Arc<Edge>, listener: TcpListener, shutdown: CancellationToken) {
    super::accept_loop(edge, listener, shutdown, "ws", connection).await;
}

/// RFC 7118 §4: the client offers the `sip` subprotocol and the server
/// must select it; a handshake without it is refused.
#[allow(clippy::result_large_err)] // the signature tungstenite's callback requires
fn select_sip(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let offers_sip = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("sip"));
    if !offers_sip {
        let mut refusal = ErrorResponse::new(Some("the sip subprotocol is required".into()));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        return Err(refusal);
    }
    response
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
    Ok(response)
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
    serve_socket(edge, stream, Transport::Ws, local, remote, shutdown).await;
}

/// Serves one WebSocket connection over `stream` (plain TCP for WS, a TLS
/// stream for WSS): the upgrade, then one SIP message per frame.
pub(crate) async fn serve_socket<S>(
    edge: Arc<Edge>,
    stream: S,
    transport: Transport,
    local: std::net::SocketAddr,
    remote: std::net::SocketAddr,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // tungstenite refuses (and the connection ends on) frames past twice
    // the SIP limit; frames between the two reach the parser, which
    // answers 413 and keeps the connection: a frame is its own framing.
    let limit = edge.config.message_sizes.ws.saturating_mul(2);
    let config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let ws = match tokio_tungstenite::accept_hdr_async_with_config(stream, select_sip, Some(config))
        .await
    {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!(%remote, error = %e, "WebSocket handshake refused");
            return;
        }
    };
    let (flow, mut rx) = super::open_flow(&edge, transport, local, remote);

    let (mut sink, mut source) = ws.split();
    // Keep-alive (the ping/pong): the server pings every interval;
    // a client that sends nothing at all, not even the pong, for two
    // intervals is gone and its flow ends (its subscriptions with it).
    let ping_every = edge.config.ws_ping_interval;
    let writer = tokio::spawn(async move {
        let mut ping = ping_every.map(tokio::time::interval);
        loop {
            let bytes = tokio::select! {
                b = rx.recv() => match b {
                    Some(b) => b,
                    None => break,
                },
                _ = async { ping.as_mut().unwrap().tick().await }, if ping.is_some() => {
                    if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                        break;
                    }
                    continue;
                }
            };
            // SIP is text; a body that is not UTF-8 goes in a binary frame.
            let frame = match String::from_utf8(bytes.to_vec()) {
                Ok(text) => Message::text(text),
                Err(e) => Message::binary(e.into_bytes()),
            };
            if sink.send(frame).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let silence_limit = ping_every.map(|d| d * 2);
    let mut last_heard = tokio::time::Instant::now();
    loop {
        let deadline = silence_limit.map(|limit| last_heard + limit);
        let frame = tokio::select! {
            f = source.next() => f,
            _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => {
                tracing::debug!(%remote, "WebSocket silent past the keep-alive limit, closing");
                break;
            }
            _ = shutdown.cancelled() => break,
        };
        last_heard = tokio::time::Instant::now();
        let bytes = match frame {
            Some(Ok(Message::Text(text))) => Bytes::from(text.as_str().to_owned()),
            Some(Ok(Message::Binary(data))) => data,
            // Pings are answered by tungstenite itself; pongs only prove life.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
        };
        let edge = Arc::clone(&edge);
        let flow = flow.clone();
        tokio::spawn(async move { edge.receive(bytes, flow).await });
    }
    super::close_flow(&edge, flow, writer).await;
}
