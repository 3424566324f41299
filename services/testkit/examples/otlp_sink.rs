//! A stand-alone OTLP/gRPC receiver for benchmarks and manual checks:
//! `cargo run --release -p testkit --example otlp_sink -- [seconds]` prints
//! its endpoint, then every second the spans and metric exports received so
//! far, for `seconds` (default 3600).

use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3600);
    let sink = testkit::OtlpSink::start()?;
    println!("endpoint {}", sink.endpoint());
    for _ in 0..seconds {
        std::thread::sleep(Duration::from_secs(1));
        println!(
            "spans {} metric-points {}",
            sink.span_count(),
            sink.metric_names().len()
        );
    }
    Ok(())
}
