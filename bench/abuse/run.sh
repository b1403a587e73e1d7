#!/usr/bin/env bash
# Query server under abuse: does ingest keep its rate, and does a normal
# `logctl tail` still answer, while the query port is held by idle,
# half-open and slowloris connections and stalled followers? One run prints
# a Markdown table (ingest rates and ratios, logctl's latency) with the
# command that produced each figure, then qbench's JSON.
#
#   bench/abuse/run.sh
#
# Environment: ROUNDS (18), N (200000 datagrams per third of a round),
# SENDERS (4 blocking senders), IDLE (150 connections that completed the
# hello and sit idle), HALF_OPEN (25 connected, nothing sent), SLOWLORIS
# (25 that sent the start of a hello frame announcing 64 KiB and trickle
# one more byte a second), STALLED (8 followers of everything from the
# ring's oldest record, 4 KiB receive buffer, never read), TAILS (3 runs of
# `logctl tail -n 100` per third) TAIL_EVERY (200ms apart), NICE (0: as a
# daemon runs), BENCH_TMPDIR (where the socket and ring go: /dev/shm when
# writable, else TMPDIR). The defaults, with logctl's own connection, stay
# under the server's 256 connections, so that logctl is not refused busy.
# MAX_HANDSHAKES (the daemon's default) sets query_max_handshakes.
# FLOOD (0) adds connections that never say hello (internal/flood: half
# silent, half two bytes of a header, each reopened a second after the
# server drops it) and HOLD (0) `logctl tail -f` processes of HOLD_UID
# (65534) on the local socket, the daemon's per-user cap set to HOLD; with
# either, logctl's runs take turns over TCP with a token and over the local
# socket. The flood runs in a process of its own (qbench flood), as an
# attacker's would, and the third starts once the daemon holds it (its
# count of connections in their handshake has settled): held connections,
# not connections being opened. The issue's case ("fair shares": 2,000
# stalled connections and one user at its cap, nothing else):
#
#   IDLE=0 HALF_OPEN=0 SLOWLORIS=0 STALLED=0 FLOOD=2000 HOLD=16 TAIL_N=5 bench/abuse/run.sh
#
# What it does, with binaries built from this checkout (no race detector):
# collectord on a fresh 256 MiB ring with the default limits (handshake
# timeout 10 s, idle 5 min, write 30 s); then `qbench abuse`
# (bench/query/qbench): ROUNDS rounds of three thirds, each N datagrams
# from SENDERS blocking senders, rate = N / time until the ring published
# the last:
#   plain:  no query client;
#   tail:   TAILS logctl runs, TAIL_EVERY apart from the third's start;
#   loaded: the whole abuse mix, connected before the first datagram, and
#           the same logctl runs.
# The thirds take turns in all six orders. The target is a median
# per-round ratio loaded/tail >= 0.95 (the mix's cost, all else equal),
# with every logctl run printing its 100 lines and exiting 0. loaded/plain
# also counts the logctl processes' own CPU, which ingest, using both CPUs
# of a small host, loses too: tail/plain shows that alone.
#
# Run it from anywhere inside the checkout; it needs go. It cleans up its
# processes and files, also when interrupted.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"

ROUNDS=${ROUNDS:-18}
N=${N:-200000}
SENDERS=${SENDERS:-4}
IDLE=${IDLE:-150}
HALF_OPEN=${HALF_OPEN:-25}
SLOWLORIS=${SLOWLORIS:-25}
STALLED=${STALLED:-8}
TAILS=${TAILS:-3}
TAIL_EVERY=${TAIL_EVERY:-200ms}
NICE=${NICE:-0}
FLOOD=${FLOOD:-0}
HOLD=${HOLD:-0}
HOLD_UID=${HOLD_UID:-65534}
TAIL_N=${TAIL_N:-100}

bench_init collectord-abuse

BIN=$WORK/bin
echo "building into $BIN ..." >&2
mkdir -p "$BIN"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$BIN/" ./cmd/collectord ./cmd/logctl ./bench/query/qbench)
ms() { awk -v v="$1" 'BEGIN { printf "%.2f ms", v / 1000 }'; }

SOCK=$WORK/c.sock RING=$WORK/ring
daemon_args=(--query-anonymous all)
fair=()
if ((FLOOD > 0 || HOLD > 0)); then
	# Operators prove themselves over TCP with a token; HOLD_UID must
	# reach logctl and the local socket.
	head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
	printf 'query_token_file = "%s"\nquery_max_conns_per_uid = %d\n' "$WORK/token" "$((HOLD > 0 ? HOLD : 16))" >"$WORK/collectord.toml"
	daemon_args=(--config "$WORK/collectord.toml" --query-anonymous none)
	fair=(-flood "$FLOOD" -token-file "$WORK/token" -local "$WORK/query.sock" -hold "$HOLD" -hold-uid "$HOLD_UID")
	if [[ -n ${MAX_HANDSHAKES:-} ]]; then
		printf 'query_max_handshakes = %d\n' "$MAX_HANDSHAKES" >>"$WORK/collectord.toml"
		fair+=(-max-handshakes "$MAX_HANDSHAKES")
	fi
	chmod 0755 "$WORK" "$BIN"
fi
start_collectord "$WORK/log" nice -n "$NICE" "$BIN/collectord" --socket "$SOCK" --ring "$RING" --ring-size 256MiB \
	--query-addr 127.0.0.1:0 --query-socket "$WORK/query.sock" --metrics-addr "" "${daemon_args[@]}"
DAEMON=$DPID

load0=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$SECONDS
echo "measuring ingest with and without the abuse mix ($ROUNDS rounds of 3 x $N datagrams) ..." >&2
f=$WORK/abuse.json
args=(-n "$N" -senders "$SENDERS" -idle "$IDLE" -half-open "$HALF_OPEN" -slowloris "$SLOWLORIS" -stalled "$STALLED" -tail-n "$TAIL_N" -tails "$TAILS" -tail-every "$TAIL_EVERY" -rounds "$ROUNDS" "${fair[@]}")
# Through run (bench/lib.sh): a signal to this script is acted on at once.
run "$BIN/qbench" abuse -socket "$SOCK" -ring "$RING" -addr "$ADDR" -logctl "$BIN/logctl" -pid "$DAEMON" "${args[@]}" >"$f"
load1=$(cut -d' ' -f1-3 /proc/loadavg)
kill -0 "$DAEMON" 2>/dev/null || die "collectord died: $(cat "$WORK/log")"

ratio=$(jget ratio_median "$f")
runs=$(jget tail_runs "$f") failures=$(jget tail_failures "$f")
met=$(awk -v r="$ratio" -v f="$failures" 'BEGIN { print (r >= 0.95 && f == 0) ? "met" : "NOT met" }')
conns=$(jget abuse_connections "$f")
cmd="qbench abuse ${args[*]}"
krate() { awk -v r="$(jget "$1" "$f")" 'BEGIN { printf "%.0f k/s", r / 1e3 }'; }
ratio3() { awk -v r="$(jget "$1" "$f")" 'BEGIN { printf "%.3f", r }'; }
# lat KEY: a latency summary (an object "KEY":{...}): runs, p50, p90, p99, max.
lat() {
	local o
	o=$(grep -o "\"$1\":{[^}]*}" "$f")
	printf '%s runs: p50 %s, p90 %s, p99 %s, max %s' "$(jget n <(echo "$o"))" "$(ms "$(jget p50_us <(echo "$o"))")" "$(ms "$(jget p90_us <(echo "$o"))")" \
		"$(ms "$(jget p99_us <(echo "$o"))")" "$(ms "$(jget max_us <(echo "$o"))")"
}
mix="$IDLE idle + $HALF_OPEN half-open + $SLOWLORIS slowloris + $STALLED stalled followers ($conns connections)"
dropped=$(jget flood_dropped "$f")
((FLOOD > 0)) && mix+=" + $FLOOD never saying hello (${dropped:-0} dropped by the budget in all)"
((HOLD > 0)) && mix+=" + uid $HOLD_UID holding its $HOLD local connections"
echo "| measurement | result | target | command |"
echo "|---|---|---|---|"
printf '| %s | %s | %s | `%s` |\n' \
	"ingest, no query client" "$(krate plain_median)" "" "$cmd" \
	"ingest, $TAILS logctl tail -n $TAIL_N per third and socket" "$(krate tail_median)" "" "(same run, taking turns)" \
	"ingest, $mix and the same logctl runs" "$(krate loaded_median)" "" "(same run, taking turns)" \
	"ratio loaded/tail: what the mix costs ingest (median of per-round ratios)" "$(ratio3 ratio_median)" ">= 0.95: $met" "(same run)" \
	"ratio loaded/plain: the mix and logctl's own CPU" "$(ratio3 ratio_vs_plain_median)" "" "(same run)" \
	"ratio tail/plain: logctl's own CPU" "$(ratio3 tail_cost_median)" "" "(same run)" \
	"logctl tail -n $TAIL_N over TCP under the mix, fork to exit" "$(lat tail)" "every run answers" "logctl tail -n $TAIL_N --addr $ADDR${fair:+ --token-file \$WORK/token}" \
	"logctl tail -n $TAIL_N over TCP without it" "$(lat tail_baseline)" "" "(same run)" \
	"logctl runs that failed (exit status, or not $TAIL_N lines)" "$failures of $runs" "0" "(same run)"
if ((${#fair[@]} > 0)); then
	printf '| %s | %s | %s | `%s` |\n' \
		"logctl tail -n $TAIL_N over the local socket under the mix" "$(lat tail_local)" "every run answers" "logctl tail -n $TAIL_N --addr unix:\$WORK/query.sock" \
		"logctl tail -n $TAIL_N over the local socket without it" "$(lat tail_local_baseline)" "" "(same run)"
fi
echo
echo "$(nproc) CPUs, $(uname -r), nice $NICE, load average $load0 at the start and $load1 at the end, $((SECONDS - t0)) s."
echo
krates() { jlist "$1" "$f" | awk -F, '{ for (i = 1; i <= NF; i++) printf "%s%.0f", (i > 1 ? ", " : ""), $i / 1e3 }'; }
echo "Per round (k records/s): plain $(krates plain_rates); tail $(krates tail_rates); loaded $(krates loaded_rates); loaded/tail $(jlist ratios "$f" | awk -F, '{ for (i = 1; i <= NF; i++) printf "%s%.3f", (i > 1 ? ", " : ""), $i }')."
echo "Fewest bytes queued at a stalled follower at the end of each loaded third: $(jlist stalled_min_queued_bytes "$f"); idle, half-open and slowloris connections the server had closed by then: $(jlist server_closed "$f"). Daemon RssAnon (KiB) after each plain third: $(jlist daemon_rss_anon_plain_kib "$f"); with the mix connected: $(jlist daemon_rss_anon_loaded_kib "$f")."
echo
sed -e "s|$BIN/||g" -e "s|$WORK|\$WORK|g" "$f"
