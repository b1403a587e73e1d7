#!/usr/bin/env bash
# logctl start-up benchmark: `logctl tail -n 100` against coreutils
# `tail -n 100` on a text file of the same 100,000 records, side by side
# in one hyperfine run.
#
#   bench/startup/run.sh
#
# What it does, with binaries built from this checkout (CGO_ENABLED=0, as
# the install instructions say, no race detector):
#  1. collectord with the shipped configs/collectord.toml, except that its
#     datagram socket, ring, local query socket and TCP listener are private
#     (in the work directory, on /dev/shm when writable; TCP on a free
#     loopback port, answering anonymous clients so that no token is
#     needed) and the metrics listener is off.
#  2. bench/query/qbench fill sends 100,000 access-log-like records
#     (~120 bytes); `logctl tail -n all -o short --ring` writes the same
#     100,000 records as text lines to a file, the one coreutils tail reads.
#  3. hyperfine (no shell between it and the commands, WARMUP unmeasured
#     runs and RUNS measured runs of each, stdout to /dev/null) times:
#     coreutils `tail -n 100 FILE`; `logctl tail -n 100` over the local
#     query socket (logctl's default transport; named with --addr unix:
#     here, since the socket is private), over TCP, and with --ring; and an
#     empty Go program built the same way, the floor of any Go binary.
#  4. Prints each command's median and its ratio to coreutils tail's.
#
# Every hyperfine run holds the shared benchmark lock (flock LOCK), so that
# benchmarks of other checkouts on the same host do not overlap with it.
#
# Environment: RUNS (500), WARMUP (50), LOCK (/tmp/collectord-bench.lock),
# LOGCTL (a logctl binary to time instead of this checkout's, e.g. an
# older build), EXTRA (more command lines to time, separated by ";", each
# word-split, e.g. "$OLD/logctl tail -n 100 --addr unix:@SOCK@"; @SOCK@,
# @ADDR@ and @RING@ are replaced), NICE (0), BENCH_TMPDIR, KEEP_WORK=1
# (keep the work directory: the hyperfine JSON, the daemon's log).
#
# Needs go, hyperfine, flock and jq. Run it from anywhere inside the
# checkout; it cleans up its processes and files, also when interrupted.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"

RUNS=${RUNS:-500}
WARMUP=${WARMUP:-50}
LOCK=${LOCK:-/tmp/collectord-bench.lock}
NICE=${NICE:-0}
for c in go hyperfine flock jq; do
	command -v "$c" >/dev/null || die "needs $c"
done

bench_init collectord-startup

BIN=$WORK/bin
echo "building into $BIN ..." >&2
mkdir -p "$BIN"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$BIN/" ./cmd/collectord ./cmd/logctl ./bench/query/qbench)
build_gohello "$BIN"
LOGCTL=${LOGCTL:-$BIN/logctl}

D=$WORK/d
mkdir -p "$D"
SOCK=$D/query.sock RING=$D/ring
start_collectord "$D/log" nice -n "$NICE" "$BIN/collectord" --config "$ROOT/configs/collectord.toml" \
	--socket "$D/c.sock" --ring "$RING" --storage volatile --query-socket "$SOCK" \
	--query-addr 127.0.0.1:0 --query-anonymous all --metrics-addr ""
[[ -n $ADDR ]] || die "collectord logged no query address"

echo "filling 100,000 records ..." >&2
step "$BIN/qbench" fill -socket "$D/c.sock" -ring "$RING" -n 100000 >"$WORK/fill.json"
step "$BIN/logctl" tail -n all -o short --ring "$RING" >"$WORK/messages.log"
[[ $(wc -l <"$WORK/messages.log") == 100000 ]] || die "text file: want 100000 lines"

names=(coreutils unix tcp ring gohello)
cmds=(
	"tail -n 100 $WORK/messages.log"
	"$LOGCTL tail -n 100 --addr unix:$SOCK"
	"$LOGCTL tail -n 100 --addr $ADDR"
	"$LOGCTL tail -n 100 --ring $RING"
	"$BIN/gohello"
)
if [[ -n ${EXTRA:-} ]]; then
	x=${EXTRA//@SOCK@/$SOCK}
	x=${x//@ADDR@/$ADDR}
	IFS=';' read -ra extra <<<"${x//@RING@/$RING}"
	for i in "${!extra[@]}"; do
		names+=("extra$((i + 1))")
		cmds+=("${extra[$i]}")
	done
fi
# Each logctl command must print what coreutils prints (the short format
# is the default): the same 100 lines.
for i in 1 2 3; do
	# shellcheck disable=SC2086 # the command line is meant to be split
	cmp -s <(${cmds[$i]}) <(tail -n 100 "$WORK/messages.log") || die "${cmds[$i]}: output differs from coreutils tail's"
done

load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "timing (${#cmds[@]} commands, $RUNS runs each after $WARMUP warm-up runs) ..." >&2
args=()
for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
run flock "$LOCK" hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" \
	--output null --export-json "$WORK/hyperfine.json" "${args[@]}" >"$WORK/hyperfine.log" 2>&1 ||
	{ cat "$WORK/hyperfine.log" >&2; die "hyperfine failed"; }
load1=$(cut -d' ' -f1-3 /proc/loadavg)

base=$(jq '.results[0].median' "$WORK/hyperfine.json")
echo "revision $(revision), $(nproc) CPUs, load average $load0 before, $load1 after; $RUNS runs each"
echo
echo "| command | median | mean ± σ | ratio to coreutils tail (medians) |"
echo "|---|---:|---:|---:|"
for i in "${!cmds[@]}"; do
	jq -r --argjson i "$i" --argjson base "$base" --arg cmd "${cmds[$i]}" '.results[$i] |
		"| `\($cmd)` | \(.median * 1e6 | round / 1e3) ms | \(.mean * 1e6 | round / 1e3) ± \(.stddev * 1e6 | round / 1e3) ms | \(.median / $base * 100 | round / 100) |"' \
		"$WORK/hyperfine.json"
done | sed -e "s|$WORK|\$WORK|g" -e "s|$ADDR|\$ADDR|g"
