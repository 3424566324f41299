#!/bin/bash
# Herald under the team's SIPp load harness (../shared/bench, the one Kamailio's
# reference figures were measured with).
#
#   bench/herald-bench.sh all                  every scenario below, default rates
#   bench/herald-bench.sh publish   [rates...] initial PUBLISH, 10k presentities
#   bench/herald-bench.sh subscribe [rates...] SUBSCRIBE + initial NOTIFY
#   bench/herald-bench.sh fanout    [rates...] 100 presentities x 10 watchers;
#                                              rate = PUBLISH pairs/s = 20 NOTIFY each
#   bench/herald-bench.sh message   [rates...] MESSAGE to users registered with
#                                              the SIPp UAS 127.0.0.1:5080 as contact
#   bench/herald-bench.sh memory    [n1 n2]    Herald RSS per 1,000 held subscriptions
#   bench/herald-bench.sh ceiling   [rates...] sipp -> sipp, no server (noise check)
#   bench/herald-bench.sh once <scenario> <rate>
#
# The shared harness writes results/ beside itself and ../shared is read-only,
# so each run copies bench.sh, its scenarios, CSVs and analysis scripts into
# $OUT/harness and runs them there, against a Herald this script starts on
# $TARGET (fresh process before every step: publish and subscribe steps leave
# 100k+ records behind). Stepping follows bench.sh: rates in order, stop at the
# first failing step, then bisect BISECT times. bench.sh's pass rule applies
# (failed < 0.1 %, achieved >= 95 % of target, retransmissions < 1 %, and for
# fan-out NOTIFY loss < 0.1 %).
#
# Environment:
#   DUR=10            seconds per step (calls = rate * DUR)
#   TARGET=127.0.0.1:5070
#   HERALD_BIN=target/release/herald (built with cargo build --release -p herald)
#   HERALD_ARGS=""    extra options for herald
#   HERALD_LOG=warn
#   BISECT=2  STOP_AFTER_FAIL=1
#   FANOUT_RULE=strict  bench.sh's rule. FANOUT_RULE=coalesce steps fan-out on that
#                     rule minus its NOTIFY-loss clause (loss still recorded), for
#                     builds before a60a5db that folded a presentity's changes
#                     reaching a watcher's queue before its pending NOTIFY left.
#   REPEAT=0          after stepping, run the highest passing rate this many more times
#   MEM_RATE=2000 MEM_SETTLE=35   (Herald keeps UDP server transactions for
#                     Timer J = 64*T1 = 32 s; settle past it before reading RSS)
#   MEM_HEALTH=127.0.0.1:5079  /metrics of the memory test's Herald: beside RSS it
#                     reads the allocator's live bytes (herald_memory_allocated, the
#                     figure comparable with Kamailio's shm real_used) and active pages
#   RCVBUF_SYSCTL=   e.g. 4194304: set net.core.rmem_default (root) for the run and
#                     restore it after. Builds before 2f1b9d5 left their UDP socket at
#                     the kernel default (212,992 B here; Kamailio's reference config
#                     asks for 4 MB with maxbuffer); later ones ask for 4 MiB
#                     themselves (--udp-buffer), so this is not needed for them.
#   OUT=bench/results/<date-time>   where the harness copy and all results go
#   CLUSTER=0         1: instead of one `herald all`, start a local cluster before
#                     every step: a fresh redis-server on REDIS_PORT (no
#                     persistence), presence shards 0 and 1, messaging shard 0 and
#                     edges A (SIP on $TARGET, where SIPp sends) and B (SIP on
#                     EDGE_B, idle unless something sends to it), gRPC and
#                     /metrics on CL_PORT.. CL_PORT+15. CPU and memory are the sum
#                     over all of them, Redis included. After each step the script
#                     records Redis commands per call (INFO commandstats) and the
#                     edge's gRPC client and the shards' gRPC server latency
#                     quantiles, interpolated in the /metrics histogram buckets.
#   PRESENCE_SHARDS=2 REDIS_PORT=6391 CL_PORT=7600 EDGE_B=127.0.0.1:5072
#   CL_WORKERS=1      --worker-threads of every cluster process (six processes
#                     share two cores; 0 = one per core)
#   UAC_PORT=7000 HOLD_PORT=7100 MP_BASE=16000 IM_UAS_PORT=5080   SIPp's ports
#                     (move them and TARGET to run beside another benchmark)
#   SHARED_BENCH=../shared/bench
set -u
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED_BENCH:-$REPO/../shared/bench}"
HERALD="${HERALD_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/herald}"
TARGET="${TARGET:-127.0.0.1:5070}"
DUR="${DUR:-10}"
BISECT="${BISECT:-2}"
STOP_AFTER_FAIL="${STOP_AFTER_FAIL:-1}"
REPEAT="${REPEAT:-0}"
HERALD_LOG="${HERALD_LOG:-warn}"
HERALD_ARGS="${HERALD_ARGS:-}"
IM_UAS_PORT="${IM_UAS_PORT:-5080}"
SIPP_BUF="${SIPP_BUF:-4194304}"
MEM_RATE="${MEM_RATE:-2000}"
MEM_SETTLE="${MEM_SETTLE:-35}"
MEM_HEALTH="${MEM_HEALTH:-127.0.0.1:5079}"
OUT="${OUT:-$REPO/bench/results/$(date +%Y%m%d-%H%M%S)}"
# absolute: steps run the harness from inside $OUT/harness
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
H="$OUT/harness"
HERALD_PID=""
RCVBUF_SYSCTL="${RCVBUF_SYSCTL:-}"
RMEM_SAVED=""
export FANOUT_RULE="${FANOUT_RULE:-strict}"
CLUSTER="${CLUSTER:-0}"
PRESENCE_SHARDS="${PRESENCE_SHARDS:-2}"
CL_WORKERS="${CL_WORKERS:-1}"
REDIS_PORT="${REDIS_PORT:-6391}"
CL_PORT="${CL_PORT:-7600}"
EDGE_B="${EDGE_B:-127.0.0.1:5072}"
CLUSTER_PIDS=""
CLUSTER_NAMES=""
UAC_PORT="${UAC_PORT:-7000}"
HOLD_PORT="${HOLD_PORT:-7100}"
export MP_BASE="${MP_BASE:-16000}"

log() { echo "[$(date +%T)] $*" | tee -a "$OUT/run.log" >&2; }

setup() {
	[ -x "$HERALD" ] || { echo "no herald binary at $HERALD: cargo build --release -p herald" >&2; exit 1; }
	[ -f "$SHARED/bench.sh" ] || { echo "no harness at $SHARED" >&2; exit 1; }
	command -v sipp >/dev/null || { echo "sipp missing (apt-get install sip-tester)" >&2; exit 1; }
	mkdir -p "$H/results"
	# run a copy, so a rebuild during the run does not swap the binary
	cmp -s "$HERALD" "$OUT/herald" 2>/dev/null || cp "$HERALD" "$OUT/herald"
	HERALD_SRC=$HERALD HERALD="$OUT/herald"
	cp "$SHARED"/bench.sh "$SHARED"/analyze.py "$SHARED"/summarize.py "$SHARED"/*.xml "$SHARED"/*.csv "$H/"
	chmod u+w "$H"/* && chmod +x "$H/bench.sh"
	# SIPp's own ports, movable so a run can go beside another one
	# (bench.sh fixes them; this edits only the copy).
	sed -i -e "s/^UAC_PORT=7000/UAC_PORT=$UAC_PORT/" -e "s/^HOLD_PORT=7100/HOLD_PORT=$HOLD_PORT/" \
		-e "s/-mp 16\([0-9]\)00/-mp \$((MP_BASE + \100))/g" "$H/bench.sh"
	{
		echo "date: $(date -Is)"
		echo "herald: $HERALD_SRC built $(date -Is -r "$HERALD_SRC"), sha256 $(sha256sum "$HERALD" | cut -c1-16)"
		echo "repo HEAD now: $(git -C "$REPO" log -1 --format='%h %cI %s')$(git -C "$REPO" diff --quiet HEAD -- services || echo ' (+ uncommitted changes in services/)')"
		echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
		echo "sipp: $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1)"
		echo "DUR=$DUR BISECT=$BISECT TARGET=$TARGET HERALD_ARGS=$HERALD_ARGS"
		echo "loadavg at start: $(cat /proc/loadavg)"
		echo "net.core.rmem_default=$(sysctl -n net.core.rmem_default) rmem_max=$(sysctl -n net.core.rmem_max)"
	} >> "$OUT/env.txt"
	if [ -n "$RCVBUF_SYSCTL" ]; then
		RMEM_SAVED=$(sysctl -n net.core.rmem_default)
		sysctl -qw net.core.rmem_default="$RCVBUF_SYSCTL" || { echo "cannot set net.core.rmem_default" >&2; exit 1; }
		echo "net.core.rmem_default set to $RCVBUF_SYSCTL for this run (restored to $RMEM_SAVED after)" >> "$OUT/env.txt"
	fi
}

start_herald() {
	[ "$CLUSTER" = 1 ] && { start_cluster; return; }
	# SIPp sends every call from one address and a few users: the flood
	# limits (docs/decisions/0013-limits.md) would measure themselves.
	# shellcheck disable=SC2086
	"$HERALD" --sip-listen "$TARGET" --log "$HERALD_LOG" \
		--max-requests-per-ip 0 --max-requests-per-user 0 $HERALD_ARGS \
		>"$OUT/herald.out" 2>>"$OUT/herald.err" &
	HERALD_PID=$!
	for _ in $(seq 1 100); do
		grep -q '^ready' "$OUT/herald.out" 2>/dev/null && return 0
		[ -d "/proc/$HERALD_PID" ] || break
		sleep 0.1
	done
	log "herald did not start (see $OUT/herald.err)"; exit 1
}

stop_herald() {
	[ "$CLUSTER" = 1 ] && { stop_cluster; return; }
	[ -n "$HERALD_PID" ] || return 0
	if [ ! -d "/proc/$HERALD_PID" ]; then
		log "herald $HERALD_PID had already exited"
	else
		kill -TERM "$HERALD_PID" 2>/dev/null
		for _ in $(seq 1 50); do [ -d "/proc/$HERALD_PID" ] || break; sleep 0.1; done
		[ -d "/proc/$HERALD_PID" ] && kill -KILL "$HERALD_PID" 2>/dev/null
	fi
	wait "$HERALD_PID" 2>/dev/null
	HERALD_PID=""
}
cleanup() {
	stop_herald
	[ -n "$RMEM_SAVED" ] && sysctl -qw net.core.rmem_default="$RMEM_SAVED"
}
trap cleanup EXIT

all_alive() {  # every process of HERALD_PID (one, or the cluster's) still runs
	local p
	for p in $HERALD_PID; do [ -d "/proc/$p" ] || return 1; done
}

herald_mem() {  # "rss_kB hwm_kB pss_kB", summed over the cluster's processes
	local p rss=0 hwm=0 pss=0
	for p in $HERALD_PID; do
		rss=$((rss + $(awk '/^VmRSS:/{print $2}' /proc/$p/status)))
		hwm=$((hwm + $(awk '/^VmHWM:/{print $2}' /proc/$p/status)))
		pss=$((pss + $(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup)))
	done
	echo "$rss $hwm $pss"
}
# "allocated_kB active_kB" from the allocator gauges on $MEM_HEALTH (-1 -1 if
# the build has none: before the herald.memory.* gauges).
herald_alloc() {
	curl -s "http://$MEM_HEALTH/metrics" | awk '
		/^herald_memory_allocated[{ ]/ {a = int($NF / 1024)}
		/^herald_memory_active[{ ]/ {b = int($NF / 1024)}
		END {print (a == "" ? -1 : a), (b == "" ? -1 : b)}'
}

# The local cluster of CLUSTER=1. Ports from CL_PORT: +0/+1 edges' gRPC,
# +2.. presence shards' gRPC, +8 messaging's gRPC, +9.. /metrics (edge A,
# edge B, messaging, presence shards).
cl_grpc_list() {  # first_offset count
	local i l=""
	for ((i = 0; i < $2; i++)); do l="$l${l:+,}127.0.0.1:$((CL_PORT + $1 + i))"; done
	echo "$l"
}
start_role() {  # name args...
	local name=$1; shift
	# shellcheck disable=SC2086
	"$HERALD" "$@" --log "$HERALD_LOG" --max-requests-per-ip 0 --max-requests-per-user 0 \
		--worker-threads "$CL_WORKERS" $HERALD_ARGS \
		>"$OUT/$name.out" 2>>"$OUT/$name.err" &
	local pid=$!
	CLUSTER_PIDS="$CLUSTER_PIDS $pid"
	CLUSTER_NAMES="$CLUSTER_NAMES $name"
	for _ in $(seq 1 150); do
		grep -q '^ready' "$OUT/$name.out" 2>/dev/null && return 0
		[ -d "/proc/$pid" ] || break
		sleep 0.1
	done
	log "$name did not start (see $OUT/$name.err)"; exit 1
}
start_cluster() {
	local edges presence messaging redis="redis://127.0.0.1:$REDIS_PORT" i
	edges=$(cl_grpc_list 0 2); presence=$(cl_grpc_list 2 "$PRESENCE_SHARDS"); messaging=$(cl_grpc_list 8 1)
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
		>"$OUT/redis.out" 2>&1 &
	CLUSTER_PIDS="$!" CLUSTER_NAMES="redis"
	for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
	for ((i = 0; i < PRESENCE_SHARDS; i++)); do
		start_role "presence$i" presence --shard-id "$i" --presence-shards "$presence" \
			--grpc-listen "127.0.0.1:$((CL_PORT + 2 + i))" --redis "$redis" --edges "$edges" \
			--health-listen "127.0.0.1:$((CL_PORT + 12 + i))"
	done
	start_role messaging0 messaging --shard-id 0 --messaging-shards "$messaging" \
		--grpc-listen "127.0.0.1:$((CL_PORT + 8))" --redis "$redis" --edges "$edges" \
		--health-listen "127.0.0.1:$((CL_PORT + 11))"
	start_role edgeA edge --sip-listen "$TARGET" --grpc-listen "127.0.0.1:$CL_PORT" \
		--presence-shards "$presence" --messaging-shards "$messaging" --health-listen "127.0.0.1:$((CL_PORT + 9))"
	start_role edgeB edge --sip-listen "$EDGE_B" --grpc-listen "127.0.0.1:$((CL_PORT + 1))" \
		--presence-shards "$presence" --messaging-shards "$messaging" --health-listen "127.0.0.1:$((CL_PORT + 10))"
	HERALD_PID=$CLUSTER_PIDS
}
stop_cluster() {
	local p
	[ -n "$CLUSTER_PIDS" ] || return 0
	for p in $CLUSTER_PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $CLUSTER_PIDS; do
		for _ in $(seq 1 50); do [ -d "/proc/$p" ] || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
	done
	CLUSTER_PIDS="" HERALD_PID=""
}
# cluster_probe <file>: Redis command counts and the /metrics of edge A and
# every presence and messaging shard, for cluster_stats.
cluster_probe() {
	local f=$1 i
	{
		local names=($CLUSTER_NAMES) pids=($CLUSTER_PIDS)
		echo "### cpu"
		for i in "${!pids[@]}"; do echo "cpu ${names[$i]} $(awk '{print $14 + $15}' "/proc/${pids[$i]}/stat")"; done
		echo "### redis"; redis-cli -p "$REDIS_PORT" info commandstats
		echo "### edge"; curl -s "http://127.0.0.1:$((CL_PORT + 9))/metrics"
		echo "### shard"; curl -s "http://127.0.0.1:$((CL_PORT + 11))/metrics"
		for ((i = 0; i < PRESENCE_SHARDS; i++)); do curl -s "http://127.0.0.1:$((CL_PORT + 12 + i))/metrics"; done
	} >"$f" 2>/dev/null
}

# Registers every user of users.csv with the IM UAS as contact (the MESSAGE
# scenario's recipients are field1, a permutation of all 10,000 users).
register_users() {
	local d="$OUT/register/$(date +%H%M%S%N)" n
	n=$(($(wc -l <"$H/users.csv") - 1))
	mkdir -p "$d"
	(cd "$d" && sipp "$TARGET" -sf "$REPO/bench/register.xml" -inf "$H/users.csv" -key uas_port "$IM_UAS_PORT" \
		-r "${REG_RATE:-4000}" -m "$n" -l 20000 -i 127.0.0.1 -p 7300 -mp 16400 -t u1 -nostdin \
		-buff_size "$SIPP_BUF" -recv_timeout 5000 -trace_stat -fd 1 >/dev/null 2>sipp.err)
	local ok
	ok=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++) if($i=="SuccessfulCall(C)") k=i; next} {x=$k} END{print x+0}' "$d"/register_*_.csv)
	[ "$ok" -eq "$n" ] || log "registration: only $ok of $n REGISTERs got 200"
}

# step <scenario> <rate>: fresh Herald, one bench.sh step; 0 if it passed
step() {
	local scn=$1 rate=$2 j brief mem alive=1
	[ "$scn" != ceiling ] && start_herald
	[ "$scn" = message ] && register_users
	local out probe=""
	[ "$CLUSTER" = 1 ] && [ "$scn" != ceiling ] && { probe="$OUT/probe-$scn-$rate-$(date +%H%M%S)"; cluster_probe "$probe.before"; }
	out=$(cd "$H" && MANAGE_KAM=0 SERVER_PIDS="$HERALD_PID" TARGET="$TARGET" DUR="$DUR" \
		IM_UAS_PORT="$IM_UAS_PORT" SIPP_BUF="$SIPP_BUF" ./bench.sh once "$scn" "$rate" 2>>"$OUT/harness.err")
	j=$(sed -n 1p <<<"$out"); brief=$(sed -n 2p <<<"$out")
	mem="0 0 0"
	[ -n "$probe" ] && cluster_probe "$probe.after"
	if [ "$scn" != ceiling ]; then
		if all_alive; then mem=$(herald_mem); else alive=0; fi
		stop_herald
	fi
	python3 - "$j" "$mem" "$alive" "$probe" >>"$OUT/steps.jsonl" <<'EOF'
import json, os, re, sys
d = json.loads(sys.argv[1]) if sys.argv[1].strip() else {"pass": False}
def probe(path):
    """Redis calls by command, and histogram buckets by (side, le)."""
    global cpu
    cpu = {}
    redis, hist, side = {}, {}, None
    for line in open(path):
        if line.startswith("### "):
            side = line[4:].strip(); continue
        m = re.match(r"cpu (\S+) (\d+)", line)
        if m:
            cpu[m[1]] = int(m[2]); continue
        m = re.match(r"cmdstat_(\w+):calls=(\d+)", line)
        if m:
            redis[m[1]] = int(m[2]); continue
        m = re.match(r'rpc_(client|server)_duration_seconds_bucket\{(.*)\} (\S+)', line)
        if m:
            le = float(re.search(r'le="([^"]+)"', m[2])[1].replace("+Inf", "inf"))
            key = (m[1], le)
            hist[key] = hist.get(key, 0) + float(m[3])
    return redis, hist
def quantile(buckets, q):
    """Prometheus histogram_quantile: linear inside the bucket."""
    les = sorted(buckets)
    total = buckets[les[-1]] if les else 0
    if total <= 0:
        return None
    rank, prev_le, prev_n = q * total, 0.0, 0.0
    for le in les:
        n = buckets[le]
        if n >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_n) / max(n - prev_n, 1e-9)
        prev_le, prev_n = le, n
    return prev_le
if len(sys.argv) > 4 and sys.argv[4]:
    try:
        r0, h0 = probe(sys.argv[4] + ".before"); c0 = cpu
        r1, h1 = probe(sys.argv[4] + ".after"); c1 = cpu
        if calls := (d.get("successful") or 0):
            # CPU per call by process (clock ticks of 10 ms)
            d["cpu_us_per_call_by_process"] = {
                k: round((c1[k] - c0.get(k, 0)) * 1e4 / calls, 1) for k in c1}
        calls = d.get("successful") or d.get("created") or 0
        used = {k: r1[k] - r0.get(k, 0) for k in r1 if r1[k] - r0.get(k, 0) > 0}
        used.pop("info", None)
        d["redis_calls"] = used
        if calls:
            d["redis_calls_per_call"] = round(sum(used.values()) / calls, 2)
        for side in ("client", "server"):
            b = {le: h1[(s, le)] - h0.get((s, le), 0) for (s, le) in h1 if s == side}
            for q in (0.5, 0.99):
                v = quantile(b, q)
                if v is not None:
                    d["grpc_%s_p%d_us" % (side, round(q * 100))] = round(v * 1e6)
    except OSError as e:
        d["probe_error"] = str(e)
rss, hwm, pss = (int(x or 0) for x in sys.argv[2].split())
d["herald_mem_after_kB"] = {"rss": rss, "hwm": hwm, "pss": pss}
d["herald_alive_after"] = sys.argv[3] == "1"
cpu, rate = d.get("server_cpu_pct"), d.get("achieved_rate")
if cpu is not None and rate:
    d["server_cpu_us_per_call"] = round(cpu * 1e4 / rate, 1)
if cpu is not None and d.get("notify_rate"):
    d["server_cpu_us_per_notify"] = round(cpu * 1e4 / d["notify_rate"], 1)
    # per NOTIFY the scenario asks for (20 per call), coalesced ones included
    d["server_cpu_us_per_notify_due"] = round(cpu * 1e4 / (20 * rate), 1)
# bench.sh's rule without the NOTIFY-loss clause (see FANOUT_RULE)
d["pass_except_notify_loss"] = bool(
    d.get("fail_ratio", 1) < 0.001 and (rate or 0) >= 0.95 * d.get("target_rate", 0)
    and d.get("retransmissions", 0) < 0.01 * max(1, d.get("created", 0)))
verdict = d["pass"]
if os.environ.get("FANOUT_RULE") == "coalesce" and "notify_loss_ratio" in d:
    verdict = d["pass_except_notify_loss"]
d["verdict"] = verdict
print(json.dumps(d))
EOF
	log "$brief$([ "$alive" = 1 ] || echo '  HERALD DIED')$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("  (stepping verdict: %s, FANOUT_RULE=coalesce)" % ("PASS" if d["verdict"] else "FAIL") if d.get("verdict") != d.get("pass") else "")' "$(tail -1 "$OUT/steps.jsonl")")"
	python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1]).get("verdict") else 1)' "$(tail -1 "$OUT/steps.jsonl")"
}

# Same stepping rule as bench.sh's step_scenario.
step_scenario() {
	local scn=$1; shift
	local good=0 bad=0 nfail=0 r i mid
	for r in "$@"; do
		log "$scn @ $r/s"
		if step "$scn" "$r"; then good=$r; else bad=$r; nfail=$((nfail + 1)); fi
		[ "$nfail" -ge "$STOP_AFTER_FAIL" ] && break
	done
	for ((i = 0; i < BISECT; i++)); do
		[ "$bad" -gt 0 ] && [ "$bad" -gt "$good" ] || break
		mid=$(((good + bad) / 2))
		if [ "$mid" -ge 1000 ]; then mid=$(((mid + 50) / 100 * 100)); elif [ "$mid" -ge 100 ]; then mid=$(((mid + 5) / 10 * 10)); fi
		{ [ "$mid" -le "$good" ] || [ "$mid" -ge "$bad" ]; } && break
		log "$scn bisect @ $mid/s"
		if step "$scn" "$mid"; then good=$mid; else bad=$mid; fi
	done
	for ((i = 0; i < REPEAT && good > 0; i++)); do
		log "$scn repeat @ $good/s"
		step "$scn" "$good" || log "$scn repeat @ $good/s FAILED"
	done
	log "RESULT $scn: highest passing rate $good/s (first failing $bad/s)"
	echo "$scn max_pass=$good first_fail=$bad" >>"$OUT/summary.txt"
}

# RSS of the Herald process per 1,000 held subscriptions (subscribe.xml, as
# bench.sh's memory test, read from /proc instead of Kamailio's shm counters).
memory() {
	local n1=${1:-10000} n2=${2:-50000} d="$OUT/memory" m0 m1 m2 ok args=$HERALD_ARGS
	mkdir -p "$d"
	HERALD_ARGS="$args --health-listen $MEM_HEALTH"
	start_herald; sleep 3
	HERALD_ARGS=$args
	m0="$(herald_mem) $(herald_alloc)"
	(cd "$d" && sipp "$TARGET" -sf "$H/subscribe.xml" -inf "$H/users.csv" -r "$MEM_RATE" -m "$n1" -l $((MEM_RATE * 6)) \
		-i 127.0.0.1 -p 7000 -mp 16200 -t u1 -nostdin -buff_size "$SIPP_BUF" -recv_timeout 5000 -trace_screen >/dev/null 2>&1)
	sleep "$MEM_SETTLE"; m1="$(herald_mem) $(herald_alloc)"
	(cd "$d" && sipp "$TARGET" -sf "$H/subscribe.xml" -inf "$H/users.csv" -r "$MEM_RATE" -m $((n2 - n1)) -l $((MEM_RATE * 6)) \
		-i 127.0.0.1 -p 7001 -mp 16300 -t u1 -nostdin -buff_size "$SIPP_BUF" -recv_timeout 5000 -trace_screen >/dev/null 2>&1)
	sleep "$MEM_SETTLE"; m2="$(herald_mem) $(herald_alloc)"
	stop_herald
	ok=$(cat "$d"/subscribe_*_screen.log | awk -F'|' '/Successful call/{gsub(/ /,"",$3); s+=$3} END{print s+0}')
	python3 - "$m0" "$m1" "$m2" "$n1" "$n2" "$ok" <<'EOF' | tee -a "$OUT/memory.jsonl"
import json, sys
m = [[int(x) for x in s.split()] for s in sys.argv[1:4]]
n1, n2, ok = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
keys = ["rss_kB", "hwm_kB", "pss_kB", "allocated_kB", "active_kB"]
d = dict(subs_ok=ok, n1=n1, n2=n2, base=dict(zip(keys, m[0])), at_n1=dict(zip(keys, m[1])), at_n2=dict(zip(keys, m[2])))
d["rss_kB_per_1000_subs_0_to_n1"] = round((m[1][0] - m[0][0]) / (n1 / 1000), 1)
d["rss_kB_per_1000_subs_n1_to_n2"] = round((m[2][0] - m[1][0]) / ((n2 - n1) / 1000), 1)
d["rss_kB_per_1000_subs_0_to_n2"] = round((m[2][0] - m[0][0]) / (n2 / 1000), 1)
d["pss_kB_per_1000_subs_n1_to_n2"] = round((m[2][2] - m[1][2]) / ((n2 - n1) / 1000), 1)
if m[2][3] >= 0:
    d["allocated_kB_per_1000_subs_n1_to_n2"] = round((m[2][3] - m[1][3]) / ((n2 - n1) / 1000), 1)
    d["active_kB_per_1000_subs_n1_to_n2"] = round((m[2][4] - m[1][4]) / ((n2 - n1) / 1000), 1)
print(json.dumps(d))
EOF
}

finish() {
	(cd "$H" && python3 summarize.py results/*.jsonl >"$OUT/tables.md" 2>/dev/null)
	cp "$H"/results/*.jsonl "$OUT/" 2>/dev/null
	log "results in $OUT (steps.jsonl, summary.txt, memory.jsonl, tables.md)"
}

scn=${1:-}; shift || true
case $scn in
	publish|subscribe|fanout|message|ceiling|memory|once|all) setup ;;
	*) sed -n '2,45p' "$0"; exit 2 ;;
esac
defaults() {  # rates given on the command line, else the defaults
	if [ $# -gt 1 ]; then shift; echo "$@"; else echo "$1"; fi
}
# shellcheck disable=SC2046
case $scn in
	publish)   step_scenario publish   $(defaults "4000 6000 9000 12000 15000" "$@") ;;
	subscribe) step_scenario subscribe $(defaults "3000 5000 7500 10000 12500" "$@") ;;
	fanout)    step_scenario fanout    $(defaults "300 500 750 1000 1500 2000" "$@") ;;
	message)   step_scenario message   $(defaults "4000 6000 9000 12000 15000" "$@") ;;
	ceiling)   step_scenario ceiling   $(defaults "12000 15000" "$@") ;;
	memory)    memory "$@" ;;
	once)      step "$1" "$2" ;;
	all)
		step_scenario ceiling 12000 15000
		step_scenario publish 4000 6000 9000 12000 15000
		step_scenario subscribe 3000 5000 7500 10000 12500
		step_scenario fanout 300 500 750 1000 1500 2000
		step_scenario message 4000 6000 9000 12000 15000
		memory 10000 50000 ;;
esac
finish
