#!/usr/bin/env bash
# Cost of the trusted origin fields (comm, exe, unit, cgroup from
# /proc/PID, internal/origin): collectord built before them (BASE, by
# default where this branch left main) against collectord built from this
# checkout, in the same run, alternating which goes first, under two loads:
#   steady:  the ingest benchmark's target load, 1 sender, 100-byte rfc3164
#            datagrams, COUNT (400000) of them, blocking writes;
#   spawn:   many short-lived senders, a process per datagram as a logger
#            per message (loadgen -spawn): SPAWN_SENDERS (4) at a time,
#            SPAWN_COUNT (500) datagrams each.
# Every run is checked with bench/ingest/verify (nothing lost, duplicated
# or reordered); verify also counts the records that carry a trusted comm.
#
#   flock /tmp/collectord-bench.lock bench/origin/run.sh [-r REPEAT]
#
# Environment (flags win): REPEAT (5), COUNT, SIZE (100), SPAWN_SENDERS,
# SPAWN_COUNT, BASE (git revision; default: git merge-base HEAD main),
# BENCH_TMPDIR.
#
# Rate = datagrams / time from loadgen's first send until the ring
# published the last (loadgen -ring). Daemon CPU per datagram: its user +
# system time (/proc/PID/stat, clock ticks, exited threads included)
# around loadgen.
# The report gives medians per build and the median of the per-repetition
# ratios after/before; the target is after/before >= 0.95 in rate. Both
# builds run as installed (CGO_ENABLED=0), query and metrics servers off,
# the ring on tmpfs, on the host's max_dgram_qlen.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"

REPEAT=${REPEAT:-5}
COUNT=${COUNT:-400000}
SIZE=${SIZE:-100}
SPAWN_SENDERS=${SPAWN_SENDERS:-4}
SPAWN_COUNT=${SPAWN_COUNT:-500}
while getopts "r:h" opt; do
	case $opt in
	r) REPEAT=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT $REPEAT: want a positive number"

bench_init collectord-origin
BASE=${BASE:-$(git -C "$ROOT" merge-base HEAD main)}
echo "building $BASE (before) and $(revision) (after) into $WORK ..." >&2
mkdir -p "$WORK/src" "$WORK/before" "$WORK/after" "$WORK/bin"
git -C "$ROOT" archive "$BASE" | tar -x -C "$WORK/src"
(cd "$WORK/src" && CGO_ENABLED=0 go build -o "$WORK/before/" ./cmd/collectord)
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/after/" ./cmd/collectord &&
	CGO_ENABLED=0 go build -o "$WORK/bin/" ./bench/ingest/loadgen ./bench/ingest/verify)

# task_ns PID: the process's CPU time in ns (proc_cpu, in clock ticks;
# the threads' schedstat would miss those that exited).
task_ns() { awk -v t="$(proc_cpu "$1")" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", t * 1e9 / hz }'; }

# load NAME SENDERS COUNT [LOADGEN FLAGS...]: one load into the daemon
# DPID; prints "rate cpu_ns_per_datagram with_comm ok".
load() {
	local name=$1 senders=$2 count=$3 c0 c1 status=0
	shift 3
	c0=$(task_ns "$DPID")
	step "$WORK/bin/loadgen" -socket "$dir/c.sock" -ring "$dir/ring" -senders "$senders" -size "$SIZE" \
		-count "$count" -timeout 120s "$@" >"$dir/lg-$name.json" </dev/null || die "loadgen ($name) failed"
	c1=$(task_ns "$DPID")
	step "$WORK/bin/verify" -ring "$dir/ring" -senders "$senders" -count "$count" -from "$(jget first_seq "$dir/lg-$name.json")" \
		-pid "$(jget pid "$dir/lg-$name.json")" >"$dir/verify-$name.json" </dev/null || status=$?
	awk -v r="$(jget stored_rate "$dir/lg-$name.json")" -v c=$((c1 - c0)) -v n=$((senders * count)) \
		-v w="$(jget with_comm "$dir/verify-$name.json")" -v ok=$((status == 0)) \
		'BEGIN { printf "%.0f %.0f %d %d", r, c / n, w, ok }'
}

# measure BUILD REP: one daemon of BUILD, both loads; appends a line to
# RESULTS: build rep steady(rate cpu comm ok) spawn(rate cpu comm ok).
measure() {
	dir=$(mktemp -d "$WORK/run.XXXXXX")
	start_collectord "$dir/cd.log" "$WORK/$1/collectord" --socket "$dir/c.sock" --ring "$dir/ring" --ring-size 128MiB \
		--query-addr "" --query-socket "" --metrics-addr ""
	local steady spawn
	steady=$(load steady 1 "$COUNT")
	spawn=$(load spawn "$SPAWN_SENDERS" "$SPAWN_COUNT" -spawn)
	kill -TERM "$DPID"
	wait_for_exit "$DPID" || die "collectord did not stop"
	wait "$DPID" || die "collectord failed: $(tail -3 "$dir/cd.log")"
	# shellcheck disable=SC2034 # read by the clean-up in lib.sh
	PIDS=()
	echo "$1 $2 $steady $spawn" >>"$RESULTS"
	echo "rep $2 $1: steady $steady, spawn $spawn (rate, CPU ns/datagram, with comm, verify ok)" >&2
	rm -rf "$dir"
}

RESULTS=$WORK/results
: >"$RESULTS"
t0=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for ((rep = 1; rep <= REPEAT; rep++)); do
	if ((rep % 2)); then
		measure before "$rep"
		measure after "$rep"
	else
		measure after "$rep"
		measure before "$rep"
	fi
done

echo
echo "collectord before $(git -C "$ROOT" rev-parse --short "$BASE"), after $(revision); $(nproc) CPUs, $(uname -r), $REPEAT repetitions alternating, $((SECONDS - t0)) s, load average $load0 before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo
echo "| load | datagrams | before msg/s | after msg/s | after/before (range) | before CPU ns/msg | after CPU ns/msg | with comm, after | verify |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
awk "$AWK_STATS"'
{ k = $1; r = $2
  sr[k] = sr[k] " " $3; sc[k] = sc[k] " " $4; sw[k] = sw[k] " " $5; ok += $6; n++
  pr[k] = pr[k] " " $7; pc[k] = pc[k] " " $8; pw[k] = pw[k] " " $9; ok += $10; n++
  S[k, r] = $3; P[k, r] = $7; reps[r] = 1 }
END {
  for (r in reps) { rs = rs " " (S["after", r] / S["before", r]); rp = rp " " (P["after", r] / P["before", r]) }
  printf "| steady, 1 x %d B | %d | %.0f | %.0f | %.3f (%s) | %.0f | %.0f | %.0f | %d/%d ok |\n", size, count,
    median(sr["before"]), median(sr["after"]), median(rs), range(rs, 3), median(sc["before"]), median(sc["after"]), median(sw["after"]), ok, n
  printf "| spawn, a process per datagram, %d at a time | %d | %.0f | %.0f | %.3f (%s) | %.0f | %.0f | %.0f | |\n", ss, sn,
    median(pr["before"]), median(pr["after"]), median(rp), range(rp, 3), median(pc["before"]), median(pc["after"]), median(pw["after"])
  t = median(rs) >= 0.95 && median(rp) >= 0.95
  printf "\nTarget: after/before >= 0.95 in both loads: %s\n", t ? "met" : "NOT met"
}' size="$SIZE" count="$COUNT" ss="$SPAWN_SENDERS" sn=$((SPAWN_SENDERS * SPAWN_COUNT)) "$RESULTS"
echo
echo "Raw results (build rep | steady rate cpu_ns with_comm ok | spawn rate cpu_ns with_comm ok):" >&2
cat "$RESULTS" >&2
awk '$6 != 1 || $10 != 1 { bad = 1 } END { exit bad }' "$RESULTS" || die "verify found lost, duplicated or reordered datagrams"
