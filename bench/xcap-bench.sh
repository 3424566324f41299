#!/bin/bash
# XCAP requests per second with wrk against a release herald, on a
# 100-entry resource list (docs/benchmarks.md has the numbers).
#
#   bench/xcap-bench.sh            memory store (herald all)
#   REDIS=redis://127.0.0.1:6390 bench/xcap-bench.sh   herald xcap on that Redis
#
# Environment: HERALD_BIN=target/release/herald, PORT=18080, DUR=10 (s),
# CONN=32 connections, THREADS=2.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HERALD_BIN:-target/release/herald}
PORT=${PORT:-18080}
DUR=${DUR:-10}
CONN=${CONN:-32}
THREADS=${THREADS:-2}
WORK=$(mktemp -d)
trap 'kill $HERALD_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

if [ -n "${REDIS:-}" ]; then
  HERALD_LOG=warn "$BIN" xcap --redis "$REDIS" --xcap-listen "127.0.0.1:$PORT" >"$WORK/herald.log" 2>&1 &
else
  HERALD_LOG=warn "$BIN" all --sip-listen 127.0.0.1:0 --ws-listen none --xcap-listen "127.0.0.1:$PORT" >"$WORK/herald.log" 2>&1 &
fi
HERALD_PID=$!
for _ in $(seq 100); do grep -q '^ready' "$WORK/herald.log" && break; sleep 0.1; done

BASE="http://127.0.0.1:$PORT/xcap-root/resource-lists/users/sip:bench@example.com/index"
{
  echo '<?xml version="1.0" encoding="UTF-8"?>'
  echo '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'
  echo '  <list name="buddies">'
  for i in $(seq 1 100); do
    echo "    <entry uri=\"sip:buddy$i@example.com\"><display-name>Buddy $i</display-name></entry>"
  done
  echo '  </list>'
  echo '</resource-lists>'
} >"$WORK/list.xml"
echo '<entry uri="sip:buddy50@example.com"><display-name>Buddy Fifty</display-name></entry>' >"$WORK/entry.xml"
curl -sf -X PUT -H 'Content-Type: application/resource-lists+xml' --data-binary @"$WORK/list.xml" "$BASE" -o /dev/null
echo "document: $(wc -c <"$WORK/list.xml") bytes, 100 entries"

ENTRY="$BASE/~~/resource-lists/list%5B@name=%22buddies%22%5D/entry%5B@uri=%22sip:buddy50@example.com%22%5D"
run() {
  echo "== $1"
  shift
  wrk -t"$THREADS" -c"$CONN" -d"${DUR}s" --latency "$@" | grep -E 'Requests/sec|Non-2xx|50%|99%|Latency '
}
run "GET document" "$BASE"
run "GET element (entry 50 by uri)" "$ENTRY"
XCAP_BODY_FILE="$WORK/list.xml" XCAP_CONTENT_TYPE=application/resource-lists+xml \
  run "PUT document (replace, validated)" -s bench/xcap/put.lua "$BASE"
XCAP_BODY_FILE="$WORK/entry.xml" XCAP_CONTENT_TYPE=application/xcap-el+xml \
  run "PUT element (replace entry 50)" -s bench/xcap/put.lua "$ENTRY"
