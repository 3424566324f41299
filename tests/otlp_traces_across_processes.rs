//! Telemetry export for real: every process of a cluster exports its spans
//! over OTLP/gRPC to a receiver in this test (built from the OpenTelemetry
//! proto definitions). One PUBLISH through an edge shows up as one trace
//! holding spans from the edge that took it, the presence shard that
//! handled it (parented across gRPC by the W3C traceparent), the shard's
//! Redis operations, and the NOTIFY the watcher's edge sent for it.

use std::collections::HashSet;

use anyhow::{ensure, Result};
use testkit::presence::{pidf_tuple, PRESENCE};
use testkit::{secs, ClusterSpec, OtlpSink, ReceivedSpan, RedisKind, TestCluster, UdpUa};

#[test]
fn one_publish_is_one_trace_across_edge_presence_redis_and_notify() -> Result<()> {
    let sink = OtlpSink::start()?;
    // Short export schedules (standard OpenTelemetry variables, inherited
    // by the herald processes) so spans arrive within the test.
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
    std::env::set_var("OTEL_METRIC_EXPORT_INTERVAL", "500");
    let otlp = sink.endpoint();
    let args = ["--otlp-endpoint", otlp.as_str()];
    let cluster = TestCluster::start_with(
        ClusterSpec::new(1, 1, 2, RedisKind::Standalone)
            .presence_args(&args)
            .messaging_args(&args)
            .edge_args(&args),
    )?;

    // Bob watches alice through edge 1; alice publishes through edge 0.
    let mut alice = UdpUa::bind("alice", cluster.edge(0))?;
    let mut bob = UdpUa::bind("bob", cluster.edge(1))?;
    let (mut dialog, _) = bob.watch(&alice.aor(), PRESENCE, 600, secs(10))?;
    let r = alice.publish(
        &pidf_tuple(&alice.aor(), "phone", "open", Some("traced")),
        600,
    )?;
    ensure!(r.status == 200, "PUBLISH: {} {}", r.status, r.reason);
    let notify = bob.recv_notify(&mut dialog, secs(10))?;
    ensure!(notify.body_text().contains("traced"));

    // The PUBLISH's trace, once every process has exported its part (each
    // exports on its own schedule): the shard's gRPC and Redis spans and
    // the NOTIFY sent through an edge.
    let complete = |trace: &[ReceivedSpan]| {
        let has = |f: &dyn Fn(&ReceivedSpan) -> bool| trace.iter().any(f);
        has(&|s| s.service == "herald-presence" && s.name.ends_with("Presence/Publish"))
            && has(&|s| s.service == "herald-presence" && s.name.starts_with("redis "))
            && has(&|s| s.name == "SIP NOTIFY out")
    };
    let mut last = Vec::new();
    let found = sink.wait_for_spans(secs(20), "the PUBLISH's whole trace", |spans| {
        let root = spans
            .iter()
            .find(|s| s.name == "SIP PUBLISH" && s.parent_span_id.is_empty())?;
        let trace: Vec<ReceivedSpan> = spans
            .iter()
            .filter(|s| s.trace_id == root.trace_id)
            .cloned()
            .collect();
        if complete(&trace) {
            return Some(trace);
        }
        last = trace;
        None
    });
    let trace = found.map_err(|e| {
        let got: Vec<String> = last
            .iter()
            .map(|s| format!("{} [{}]", s.name, s.service))
            .collect();
        e.context(format!("spans of the trace so far: {}", got.join(", ")))
    })?;
    let describe = || {
        trace
            .iter()
            .map(|s| format!("{} [{} pid {}]", s.name, s.service, s.pid))
            .collect::<Vec<_>>()
            .join(", ")
    };

    // Spans from at least two processes: the edges and the presence shard.
    let services: HashSet<&str> = trace.iter().map(|s| s.service.as_str()).collect();
    ensure!(
        services.contains("herald-edge") && services.contains("herald-presence"),
        "spans from the edge and the presence shard under one trace: {}",
        describe()
    );
    let pids: HashSet<i64> = trace.iter().map(|s| s.pid).collect();
    ensure!(pids.len() >= 2, "two processes at least: {}", describe());

    let root = trace
        .iter()
        .find(|s| s.name == "SIP PUBLISH")
        .expect("picked above");
    ensure!(root.service == "herald-edge");
    ensure!(root.attribute("sip.status") == Some("200"), "{root:?}");

    // The shard's gRPC span is a child of a span in the edge's process:
    // the parent crossed in the traceparent metadata.
    let served = trace
        .iter()
        .find(|s| s.service == "herald-presence" && s.name.ends_with("Presence/Publish"))
        .ok_or_else(|| anyhow::anyhow!("no presence Publish span: {}", describe()))?;
    let parent = trace
        .iter()
        .find(|s| s.span_id == served.parent_span_id)
        .ok_or_else(|| anyhow::anyhow!("the Publish span's parent is not in the trace"))?;
    ensure!(
        parent.service == "herald-edge",
        "parented on the edge's call: {parent:?}"
    );

    // Redis operations of the shard, and the NOTIFY the watcher's edge sent.
    ensure!(
        trace
            .iter()
            .any(|s| s.service == "herald-presence" && s.name.starts_with("redis ")),
        "Redis spans in the trace: {}",
        describe()
    );
    let sent = trace
        .iter()
        .find(|s| s.name == "SIP NOTIFY out")
        .expect("waited for above");
    ensure!(sent.service == "herald-edge", "{sent:?}");

    // Metrics go the same way.
    testkit::eventually(secs(20), "request counters over OTLP", || {
        Ok(sink
            .metric_names()
            .iter()
            .any(|n| n == "sip.server.requests")
            .then_some(()))
    })?;
    Ok(())
}
