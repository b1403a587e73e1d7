#!/usr/bin/env bash
# Query benchmark: how fast logctl answers, dumps and follows, and whether
# query clients slow ingest. One run prints a Markdown table of medians (and
# p99 where it matters), each with the command that produced it.
#
#   bench/query/run.sh
#
# Environment: RUNS (200 runs per start-up figure), DUMP_RUNS (5 runs per
# 1M-record dump), LAT_N (10000 messages for the follow latency, at
# LAT_RATE 1000/s), STALL_ROUNDS (7 rounds of 200,000 datagrams with and
# without a stalled client and IDLE (200) idle connections), JOURNAL (1:
# also time journalctl -n 100 on a private journald, when root; 0: skip),
# NICE (0: as a daemon runs), BENCH_TMPDIR (where sockets and rings go:
# /dev/shm when writable, else TMPDIR).
#
# What it does, in order, with binaries built from this checkout (no race
# detector):
#  1. collectord on a fresh 512 MiB ring; bench/query/qbench fill sends
#     100,000 access-log-like records (~120 bytes) through its socket.
#  2. Start-up: `qbench time` runs `logctl tail -n 100` RUNS times (after 10
#     unmeasured runs), over TCP and with --ring, and for comparison
#     coreutils `tail -n 100` on a text file of the same 100,000 lines and
#     an empty Go program, taking turns between the commands; then
#     `journalctl -n 100` on a private journald holding the same messages.
#     Wall time is fork to exit, process start included.
#  3. Dump: 900,000 more records, then `logctl tail -n 1000000 -o raw >
#     /dev/null` DUMP_RUNS times, over TCP and with --ring (and -o json and
#     -o short over TCP).
#  4. Follow latency: `qbench latency` runs `logctl tail -f -n 0 -o json`,
#     sends LAT_N messages at LAT_RATE per second, each carrying its
#     CLOCK_REALTIME send time, and takes the time again when logctl's line
#     for it arrives.
#  5. Ingest with query clients: a second collectord (256 MiB ring);
#     `qbench stall` alternates sending 200,000 datagrams (4 blocking
#     senders) with no client, and with one stalled follower (a follow of
#     everything, 4 KiB receive buffer, never read) plus IDLE idle
#     connections; rate = count / time until the ring published the last.
#
# Run it from anywhere inside the checkout; it needs go. It cleans up its
# processes and files, also when interrupted.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"

RUNS=${RUNS:-200}
DUMP_RUNS=${DUMP_RUNS:-5}
LAT_N=${LAT_N:-10000}
LAT_RATE=${LAT_RATE:-1000}
STALL_ROUNDS=${STALL_ROUNDS:-7}
IDLE=${IDLE:-200}
JOURNAL=${JOURNAL:-1}
NICE=${NICE:-0}

bench_init collectord-query

BIN=$WORK/bin
echo "building into $BIN ..." >&2
mkdir -p "$BIN"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$BIN/" ./cmd/collectord ./cmd/logctl ./bench/query/qbench)
build_gohello "$BIN"
# Every step runs through step, or run (step at NICE), from bench/lib.sh:
# in the background, waited for, so that a signal to this script is acted
# on at once rather than after the step ends.
ms() { awk -v v="$1" 'BEGIN { printf "%.2f ms", v / 1000 }'; }

# start_daemon NAME RING_SIZE: runs collectord in $WORK/NAME and sets
# DPID, ADDR, SOCK and RING.
start_daemon() {
	local dir=$WORK/$1
	mkdir -p "$dir"
	SOCK=$dir/c.sock RING=$dir/ring
	start_collectord "$dir/log" nice -n "$NICE" "$BIN/collectord" --socket "$SOCK" --ring "$RING" --ring-size "$2" \
		--query-addr 127.0.0.1:0 --query-anonymous all --query-socket "$dir/query.sock" --metrics-addr ""
}

OUT=$WORK/table.md
: >"$OUT"
row() { printf '| %s | %s | %s | `%s` |\n' "$1" "$2" "$3" "$4" >>"$OUT"; }
load0=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$SECONDS

# 1-2. Start-up.
start_daemon a 512MiB
A_PID=$DPID A_ADDR=$ADDR A_SOCK=$SOCK A_RING=$RING
echo "filling 100,000 records ..." >&2
run "$BIN/qbench" fill -socket "$A_SOCK" -ring "$A_RING" -n 100000 >"$WORK/fill1.json"
LOGCTL=$BIN/logctl
step "$LOGCTL" tail -n 100000 --ring "$A_RING" >"$WORK/messages.log"
[[ $(wc -l <"$WORK/messages.log") == 100000 ]] || die "text file: want 100000 lines"
# One qbench run takes turns between the commands, so that load drifting on
# the host affects them alike.
echo "timing tail -n 100 ($RUNS runs each) ..." >&2
labels=(
	"logctl tail -n 100 (TCP)|< 4 ms"
	"logctl tail -n 100 --ring|< 4 ms"
	"logctl tail -n 100 -o json (TCP)|"
	"logctl tail -n 100 -p err: nothing matches, scans all 100k (TCP)|"
	"logctl tail -n 0 --ring: start-up and mapping the ring, no output|"
	"coreutils tail -n 100, text file of the same 100k lines|"
	"empty Go program (func main() {}), for scale|"
)
run "$BIN/qbench" time -runs "$RUNS" -- \
	"$LOGCTL" tail -n 100 --addr "$A_ADDR" ::: \
	"$LOGCTL" tail -n 100 --ring "$A_RING" ::: \
	"$LOGCTL" tail -n 100 -o json --addr "$A_ADDR" ::: \
	"$LOGCTL" tail -n 100 -p err --addr "$A_ADDR" ::: \
	"$LOGCTL" tail -n 0 --ring "$A_RING" ::: \
	tail -n 100 "$WORK/messages.log" ::: \
	"$BIN/gohello" >"$WORK/startup.json"
for i in "${!labels[@]}"; do
	sed -n "$((i + 1))p" "$WORK/startup.json" >"$WORK/t.json"
	cmd=$(grep -o '"command":\[[^]]*\]' "$WORK/t.json" | sed -e 's/"command":\[//' -e 's/\]$//' -e 's/","/ /g' -e 's/"//g')
	row "${labels[$i]%%|*}" "p50 $(ms "$(jget p50_us "$WORK/t.json")"), p99 $(ms "$(jget p99_us "$WORK/t.json")")" "${labels[$i]#*|}" "$cmd"
done

# journalctl on a private journald (its own mount namespace: /run/systemd
# and /run/log are private tmpfs there) holding the same 100k messages.
journald=/lib/systemd/systemd-journald
if [[ $JOURNAL == 1 && $(id -u) == 0 && -x $journald ]] && command -v journalctl systemd-cat >/dev/null &&
	unshare -m --propagation private true 2>/dev/null; then
	echo "timing journalctl -n 100 ..." >&2
	step "$LOGCTL" tail -n 100000 -o raw --ring "$A_RING" >"$WORK/raw.log"
	cat >"$WORK/journal.sh" <<-'EOF'
		set -euo pipefail
		mount -t tmpfs none /run/systemd
		mkdir -p /run/systemd/journal /run/systemd/journald.conf.d /run/log
		mount -t tmpfs none /run/log
		printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\nRuntimeMaxUse=1G\n' >/run/systemd/journald.conf.d/bench.conf
		"$JOURNALD" 2>/dev/null &
		jpid=$!
		qpid=
		trap 'kill $qpid $jpid 2>/dev/null || true; wait 2>/dev/null || true' EXIT
		trap 'exit 143' INT TERM
		for ((i = 0; i < 200; i++)); do [[ -S /run/systemd/journal/stdout ]] && break; sleep 0.05; done
		systemd-cat -t web <"$WORK/raw.log"
		# journald reads the stream asynchronously: wait until all are in.
		for ((i = 0; i < 600; i++)); do
			[[ $(journalctl -t web -o cat | wc -l) -ge 100000 ]] && break
			sleep 0.1
		done
		[[ $(journalctl -t web -o cat | wc -l) == 100000 ]] || { echo "journal: want 100000 entries" >&2; exit 1; }
		nice -n "$NICE" "$QBENCH" time -runs "$RUNS" -- journalctl -n 100 >"$WORK/t.json" &
		qpid=$!
		wait $qpid
	EOF
	if JOURNALD=$journald WORK=$WORK NICE=$NICE QBENCH=$BIN/qbench RUNS=$RUNS \
		step unshare -m --propagation private bash "$WORK/journal.sh"; then
		row "journalctl -n 100, private journald holding the same 100k" "p50 $(ms "$(jget p50_us "$WORK/t.json")"), p99 $(ms "$(jget p99_us "$WORK/t.json")")" "" "journalctl -n 100"
	else
		echo "run.sh: journalctl comparison failed; skipped" >&2
	fi
fi

# 3. Dump a million records.
echo "filling 900,000 more records ..." >&2
run "$BIN/qbench" fill -socket "$A_SOCK" -ring "$A_RING" -n 900000 >"$WORK/fill2.json"
dump() {
	local label=$1 target=$2 f=$WORK/d.json
	shift 2
	run "$BIN/qbench" time -runs "$DUMP_RUNS" -warmup 1 -devnull -records 1000000 -- "$@" >"$f"
	row "$label" "$(awk -v r="$(jget records_per_sec "$f")" 'BEGIN { printf "%.2f M records/s", r / 1e6 }') ($(ms "$(jget p50_us "$f")"))" "$target" "$* > /dev/null"
}
echo "timing 1M-record dumps ($DUMP_RUNS runs each) ..." >&2
dump "dump 1M records, -o raw (TCP)" ">= 1 M/s" "$LOGCTL" tail -n 1000000 -o raw --addr "$A_ADDR"
dump "dump 1M records, -o raw --ring" ">= 1 M/s" "$LOGCTL" tail -n 1000000 -o raw --ring "$A_RING"
dump "dump 1M records, -o json (TCP)" "" "$LOGCTL" tail -n 1000000 -o json --addr "$A_ADDR"
dump "dump 1M records, -o short (TCP)" "" "$LOGCTL" tail -n 1000000 -o short --addr "$A_ADDR"

# 4. Follow latency.
latency() {
	local label=$1 f=$WORK/l.json
	shift
	run "$BIN/qbench" latency -socket "$A_SOCK" -logctl "$LOGCTL" -rate "$LAT_RATE" -n "$LAT_N" -- "$@" >"$f"
	[[ $(jget printed "$f") == "$LAT_N" && $(jget lost "$f") == 0 ]] || die "latency: not every message printed: $(cat "$f")"
	row "$label" "p50 $(ms "$(jget p50_us "$f")"), p99 $(ms "$(jget p99_us "$f")"), p99.9 $(ms "$(jget p999_us "$f")")" "p99 < 0.5 ms" \
		"qbench latency -rate $LAT_RATE -n $LAT_N -- $*  (logctl tail -f -n 0 -o json $*)"
}
echo "measuring follow latency ($LAT_N messages at $LAT_RATE/s) ..." >&2
latency "follow latency, send to printed (TCP)" --addr "$A_ADDR"
latency "follow latency, send to printed (--ring)" --ring "$A_RING"
kill -TERM "$A_PID"
wait "$A_PID" 2>/dev/null || true

# 5. Ingest with a stalled client and idle connections.
echo "measuring ingest with and without query clients ($STALL_ROUNDS rounds) ..." >&2
start_daemon b 256MiB
f=$WORK/s.json
run "$BIN/qbench" stall -socket "$SOCK" -ring "$RING" -addr "$ADDR" -n 200000 -senders 4 -idle "$IDLE" -rounds "$STALL_ROUNDS" >"$f"
row "ingest, no query client" "$(awk -v r="$(jget plain_median "$f")" 'BEGIN { printf "%.0f k/s", r / 1e3 }')" "" "qbench stall -n 200000 -senders 4 -idle $IDLE -rounds $STALL_ROUNDS"
row "ingest, 1 stalled follower + $IDLE idle connections" "$(awk -v r="$(jget loaded_median "$f")" 'BEGIN { printf "%.0f k/s", r / 1e3 }')" "" "(same run, alternating)"
row "ratio loaded/plain (median of per-round ratios)" "$(awk -v r="$(jget ratio_median "$f")" 'BEGIN { printf "%.3f", r }')" "~1" "(same run)"
cp "$f" "$WORK/stall.json"

load1=$(cut -d' ' -f1-3 /proc/loadavg)
{
	echo
	echo "$(nproc) CPUs, $(uname -r), nice $NICE, load average $load0 at the start and $load1 at the end, $((SECONDS - t0)) s."
	echo
	echo "Stall rounds (records/s): plain [$(jlist plain_rates "$WORK/stall.json")], loaded [$(jlist loaded_rates "$WORK/stall.json")]; bytes queued at the stalled client: [$(jlist stalled_client_queued_bytes "$WORK/stall.json")]."
	echo
} >>"$OUT"
echo "| measurement | result | target | command |"
echo "|---|---|---|---|"
# Show paths relative to the work directory and the binaries by name.
sed -e "s|$BIN/||g" -e "s|$WORK|\$WORK|g" "$OUT"
