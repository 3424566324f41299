//! The reverse path from a shard to clients (DESIGN.md §2): a NOTIFY or
//! MESSAGE goes to the edge that holds the client's flow, named at the
//! front of the flow token. If that edge is gone, a UDP client is reached
//! through any other edge (a datagram needs no connection); a connection
//! client is gone with its edge and comes back by refreshing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use api::{DeliveryError, EdgeDelivery, FinalResponse, OutboundRequest};
use async_trait::async_trait;
use sip::Method;
use store::FlowToken;

use crate::{ClientConfig, GrpcEdgeDelivery};

/// How long an edge that failed at the transport level is skipped.
const DOWN_FOR: Duration = Duration::from_secs(5);

/// [`EdgeDelivery`] for a shard: one gRPC client per edge, by address.
pub struct EdgeRouter {
    /// Every edge known from configuration, tried in order for UDP flows
    /// whose own edge is unreachable.
    edges: Vec<String>,
    config: ClientConfig,
    clients: Mutex<HashMap<String, GrpcEdgeDelivery>>,
    down_until: Mutex<HashMap<String, Instant>>,
}

impl EdgeRouter {
    pub fn new(edges: Vec<String>, config: ClientConfig) -> Self {
        EdgeRouter {
            edges,
            config,
            clients: Mutex::new(HashMap::new()),
            down_until: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, edge: &str) -> Result<GrpcEdgeDelivery, DeliveryError> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(edge) {
            return Ok(c.clone());
        }
        let c = GrpcEdgeDelivery::connect_lazy(edge.to_string(), &self.config)
            .map_err(|e| DeliveryError::Transport(format!("edge {edge}: {e}")))?;
        clients.insert(edge.to_string(), c.clone());
        Ok(c)
    }

    fn is_down(&self, edge: &str) -> bool {
        let down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        down.get(edge).is_some_and(|until| Instant::now() < *until)
    }

    fn mark_down(&self, edge: &str) {
        self.down_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(edge.to_string(), Instant::now() + DOWN_FOR);
    }

    async fn try_edge(
        &self,
        edge: &str,
        flow: &FlowToken,
        request: OutboundRequest,
    ) -> Result<FinalResponse, DeliveryError> {
        let result = self.client(edge)?.send_request(flow, request).await;
        if matches!(result, Err(DeliveryError::Transport(_))) {
            self.mark_down(edge);
        }
        result
    }
}

#[async_trait]
impl EdgeDelivery for EdgeRouter {
    async fn send_request(
        &self,
        flow: &FlowToken,
        request: OutboundRequest,
    ) -> Result<FinalResponse, DeliveryError> {
        let Some((home, path)) = flow.0.split_once('#') else {
            return Err(DeliveryError::FlowGone(flow.0.clone()));
        };
        let udp = path.starts_with("udp/");
        // A NOTIFY that failed through its own edge may have reached the
        // client: it must not be sent again with the same CSeq (RFC 3261
        // §12.2.1.1). Its sender retries with the next CSeq, and by then
        // the edge is marked down, so the retry goes through another.
        let same_cseq_retry_ok = request.method != Method::Notify;
        let mut request = request;
        if !self.is_down(home) {
            match self.try_edge(home, flow, request.clone()).await {
                Err(DeliveryError::Transport(e)) if udp && !same_cseq_retry_ok => {
                    return Err(DeliveryError::Transport(e));
                }
                Err(DeliveryError::Transport(e)) if udp => {
                    tracing::debug!(edge = home, error = %e, "edge unreachable, trying another");
                    // The failed edge may have sent it: the same CSeq again
                    // through another edge (a new branch) would be a merged
                    // request the client answers 482 (RFC 3261 §8.2.2.2).
                    // The next one is a new request; a client that did get
                    // the first sees the message twice, not an error.
                    request.cseq = request.cseq.wrapping_add(1);
                }
                Err(DeliveryError::Transport(_)) => {
                    return Err(DeliveryError::FlowGone(flow.0.clone()))
                }
                other => return other,
            }
        } else if !udp {
            return Err(DeliveryError::FlowGone(flow.0.clone()));
        }
        for edge in self.edges.iter().filter(|e| e.as_str() != home) {
            if self.is_down(edge) {
                continue;
            }
            match self.try_edge(edge, flow, request.clone()).await {
                Err(DeliveryError::Transport(_)) => continue,
                other => return other,
            }
        }
        Err(DeliveryError::Transport(format!(
            "no edge reachable for {}",
            flow.0
        )))
    }
}
