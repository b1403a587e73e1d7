#!/usr/bin/env bash
# Before/after: the ingest rate, `logctl tail -n 100` and the follow
# latency of two builds of collectord and logctl, measured in one run,
# taking turns, so that a change can be judged against the previous
# release (or any revision) on the same host at the same moment.
#
#   bench/compare/run.sh [-r ROUNDS] BASE [NEW]
#
# BASE and NEW are git revisions; NEW defaults to the working tree (with
# its uncommitted changes). Both are built the way users install them
# (CGO_ENABLED=0, no race detector) and run with the default configuration
# (ring on a tmpfs, nothing pinned, not niced), except that the metrics
# listener is off and the query server listens on an ephemeral loopback
# port. The load generators (bench/ingest/loadgen, verify, bench/query/qbench)
# are built from NEW and drive both builds alike.
#
# What one run measures, with ROUNDS rounds (5) taking turns A B B A ...:
#  1. Ingest: a fresh 256 MiB ring, 1 sender, 400,000 100-byte RFC 3164
#     datagrams, blocking writes (the ingest benchmark's target load);
#     rate = count / time until the ring published the last datagram; CPU
#     per datagram from /proc; every run checked by verify (none lost,
#     duplicated or reordered).
#  2. Start-up: both daemons hold the same 100,000 records; qbench time
#     runs `logctl tail -n 100` over TCP and with --ring, TAIL_RUNS (200)
#     times each, alternating between A and B.
#  3. Follow: qbench latency, LAT_N (5000) messages at 1000/s through
#     `logctl tail -f -n 0 -o json` over TCP, ROUNDS times each, taking
#     turns.
#
# It prints a Markdown table: medians of A and B and their ratio (for the
# ingest rate also the median of the per-round ratios). Run it from
# anywhere inside the checkout as root or not; it cleans up after itself.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"
PROG=compare

ROUNDS=5
while getopts r: opt; do
	case $opt in
	r) ROUNDS=$OPTARG ;;
	*) die "usage: run.sh [-r ROUNDS] BASE [NEW]" ;;
	esac
done
shift $((OPTIND - 1))
[[ $# -ge 1 && $# -le 2 ]] || die "usage: run.sh [-r ROUNDS] BASE [NEW]"
BASE_REV=$1 NEW_REV=${2:-}
TAIL_RUNS=${TAIL_RUNS:-200}
LAT_N=${LAT_N:-5000}
COUNT=${COUNT:-400000}

# It builds revisions from git worktrees: a git checkout only.
git -C "$HERE" rev-parse --show-toplevel >/dev/null
bench_init collectord-compare
# cleanup_hook: run by the clean-up after the daemons have stopped, before
# WORK goes: unregister the revisions' worktrees.
cleanup_hook() {
	local t
	for t in "$WORK"/src-*; do
		if [[ -d $t ]]; then
			git -C "$ROOT" worktree remove --force "$t" 2>/dev/null || true
		fi
	done
}

# build NAME REV: the daemon and logctl of REV ("" = the working tree)
# into $WORK/NAME.
build() {
	local name=$1 rev=$2 src=$ROOT
	if [[ -n $rev ]]; then
		src=$WORK/src-$name
		git -C "$ROOT" worktree add --quiet --detach "$src" "$rev" || die "no revision $rev"
	fi
	mkdir -p "$WORK/$name"
	(cd "$src" && CGO_ENABLED=0 go build -o "$WORK/$name/" ./cmd/collectord ./cmd/logctl) || die "build $rev failed"
	if [[ -n $rev ]]; then git -C "$ROOT" rev-parse --short "$rev"; else echo "the working tree at $(git -C "$ROOT" rev-parse --short HEAD)"; fi
}
echo "building ..." >&2
LABEL_A=$(build a "$BASE_REV")
LABEL_B=$(build b "$NEW_REV")
mkdir -p "$WORK/tools"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/tools/" ./bench/ingest/loadgen ./bench/ingest/verify ./bench/query/qbench)
T=$WORK/tools

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# start NAME DIR [ARGS...]: run build NAME's daemon on a socket and ring in
# DIR; sets DPID and ADDR. A build with a local query socket keeps it in
# DIR and answers the TCP clients here, which present no token, as builds
# before it did (--query-anonymous all); older builds know neither flag.
start() {
	local name=$1 dir=$2 local=()
	shift 2
	mkdir -p "$dir"
	if "$WORK/$name/collectord" -h 2>&1 | grep -q -- -query-socket; then
		local=(--query-socket "$dir/query.sock" --query-anonymous all)
	fi
	start_collectord "$dir/log" "$WORK/$name/collectord" --socket "$dir/c.sock" --ring "$dir/ring" --ring-size 256MiB \
		--query-addr 127.0.0.1:0 --metrics-addr "" "${local[@]}" "$@"
}
stop() {
	kill -TERM "$1"
	wait "$1" || die "collectord $1 failed on SIGTERM"
}

t0=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)

# 1. Ingest.
echo "ingest: $ROUNDS rounds of $COUNT datagrams each ..." >&2
: >"$WORK/ingest.tsv"
ingest_run() {
	local name=$1 round=$2 dir=$WORK/ingest-$1-$2 cpu0 cpu1
	start "$name" "$dir"
	cpu0=$(proc_cpu "$DPID")
	"$T/loadgen" -socket "$dir/c.sock" -senders 1 -size 100 -count "$COUNT" -ring "$dir/ring" -timeout 60s >"$dir/lg.json" ||
		die "$name: loadgen failed"
	cpu1=$(proc_cpu "$DPID")
	stop "$DPID"
	"$T/verify" -ring "$dir/ring" -senders 1 -count "$COUNT" -pid "$(jget pid "$dir/lg.json")" >"$dir/v.json" ||
		die "$name: verify failed: $(cat "$dir/v.json")"
	printf '%s\t%s\t%s\t%s\n' "$name" "$round" "$(jget stored_rate "$dir/lg.json")" \
		"$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" -v n="$COUNT" 'BEGIN { printf "%.3f", (b - a) / hz * 1e6 / n }')" \
		>>"$WORK/ingest.tsv"
	rm -rf "$dir"
}
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then order="a b"; else order="b a"; fi
	for n in $order; do ingest_run "$n" "$r"; done
done
col() { awk -F'\t' -v n="$1" -v c="$2" '$1 == n { print $c }' "$WORK/ingest.tsv"; }
rate_a=$(col a 3 | median) rate_b=$(col b 3 | median)
cpu_a=$(col a 4 | median) cpu_b=$(col b 4 | median)
ratio_rounds=$(awk -F'\t' '{ r[$2, $1] = $3 } END { for (k in r) { split(k, p, SUBSEP); if (p[2] == "a") print r[p[1], "b"] / r[p[1], "a"] } }' "$WORK/ingest.tsv" | median)

# 2. Start-up, and 3. follow, on two daemons holding the same records.
echo "tail -n 100: filling both daemons with 100,000 records ..." >&2
start a "$WORK/qa"
A_PID=$DPID A_ADDR=$ADDR
start b "$WORK/qb"
B_PID=$DPID B_ADDR=$ADDR
for n in a b; do
	"$T/qbench" fill -socket "$WORK/q$n/c.sock" -ring "$WORK/q$n/ring" -n 100000 >/dev/null || die "fill $n failed"
done
echo "tail -n 100: $TAIL_RUNS runs of each ..." >&2
"$T/qbench" time -runs "$TAIL_RUNS" -- \
	"$WORK/a/logctl" tail -n 100 --addr "$A_ADDR" ::: "$WORK/b/logctl" tail -n 100 --addr "$B_ADDR" ::: \
	"$WORK/a/logctl" tail -n 100 --ring "$WORK/qa/ring" ::: "$WORK/b/logctl" tail -n 100 --ring "$WORK/qb/ring" \
	>"$WORK/tail.json" || die "qbench time failed"
tail_p50() { sed -n "${1}p" "$WORK/tail.json" | jget p50_us; }

echo "follow latency: $ROUNDS rounds of $LAT_N messages ..." >&2
: >"$WORK/lat.tsv"
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then order="a b"; else order="b a"; fi
	for n in $order; do
		addr=$A_ADDR
		[[ $n == b ]] && addr=$B_ADDR
		"$T/qbench" latency -socket "$WORK/q$n/c.sock" -logctl "$WORK/$n/logctl" -rate 1000 -n "$LAT_N" -- --addr "$addr" \
			>"$WORK/l.json" || die "latency $n failed"
		[[ $(jget printed "$WORK/l.json") == "$LAT_N" ]] || die "latency $n: not every message printed"
		printf '%s\t%s\t%s\n' "$n" "$(jget p50_us "$WORK/l.json")" "$(jget p99_us "$WORK/l.json")" >>"$WORK/lat.tsv"
	done
done
stop "$A_PID"
stop "$B_PID"
lat() { awk -F'\t' -v n="$1" -v c="$2" '$1 == n { print $c }' "$WORK/lat.tsv" | median; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b / a }'; }
ms() { awk -v v="$1" 'BEGIN { printf "%.3f ms", v / 1000 }'; }
echo
echo "A = $LABEL_A; B = $LABEL_B. $(nproc) CPUs, load average $load0 at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end, $((SECONDS - t0)) s."
echo
echo "| measurement | A | B | B/A |"
echo "|---|---|---|---|"
printf '| ingest, 1 sender, 100 B, %s datagrams (median of %s rounds) | %.0f k/s | %.0f k/s | %s (per-round median %.3f) |\n' \
	"$COUNT" "$ROUNDS" "$(awk -v r="$rate_a" 'BEGIN { print r / 1e3 }')" "$(awk -v r="$rate_b" 'BEGIN { print r / 1e3 }')" \
	"$(ratio "$rate_a" "$rate_b")" "$ratio_rounds"
printf '| ingest CPU per datagram | %s µs | %s µs | %s |\n' "$cpu_a" "$cpu_b" "$(ratio "$cpu_a" "$cpu_b")"
printf '| logctl tail -n 100 over TCP, p50 of %s | %s | %s | %s |\n' "$TAIL_RUNS" "$(ms "$(tail_p50 1)")" "$(ms "$(tail_p50 2)")" "$(ratio "$(tail_p50 1)" "$(tail_p50 2)")"
printf '| logctl tail -n 100 --ring, p50 of %s | %s | %s | %s |\n' "$TAIL_RUNS" "$(ms "$(tail_p50 3)")" "$(ms "$(tail_p50 4)")" "$(ratio "$(tail_p50 3)" "$(tail_p50 4)")"
printf '| follow latency over TCP, p50 (median of %s rounds) | %s | %s | %s |\n' "$ROUNDS" "$(ms "$(lat a 2)")" "$(ms "$(lat b 2)")" "$(ratio "$(lat a 2)" "$(lat b 2)")"
printf '| follow latency over TCP, p99 (median of %s rounds) | %s | %s | %s |\n' "$ROUNDS" "$(ms "$(lat a 3)")" "$(ms "$(lat b 3)")" "$(ratio "$(lat a 3)" "$(lat b 3)")"
echo
echo "Ingest rounds (datagrams/s): A $(col a 3 | tr '\n' ' '); B $(col b 3 | tr '\n' ' ')"
