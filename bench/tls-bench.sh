#!/bin/bash
# Handshakes and requests per second over TLS and WSS compared with UDP, on
# this machine (bench/tls: the clients and herald share it).
#
#   bench/tls-bench.sh [clients] [seconds]     defaults: 4 clients, 5 s per line
#
# Builds herald and the tool in release mode; herald logs at warn.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p herald -p tls-bench
export HERALD_BIN="$PWD/target/release/herald"
export RUST_LOG="${RUST_LOG:-warn}"
exec target/release/tls-bench "$@"
