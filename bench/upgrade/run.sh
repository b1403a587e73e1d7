#!/usr/bin/env bash
# Upgrade benchmark: collectord upgraded in place (SIGHUP) 50 times under a
# light steady load, reporting the handoff gap (how long no process reads
# the datagram socket: the new process's ingest_started_unix_ns minus the
# old one's ingest_stopped_unix_ns, from the daemon's log) and the upgrade
# time (SIGHUP to the pid file naming the new process), p50/p99/max, for
# each max_dgram_qlen and ring fill mode. Every run also checks that each
# datagram of the load was stored exactly once, in order (bench/upgrade/
# upgrader, which does the measuring, documents the details).
#
#   bench/upgrade/run.sh [-n UPGRADES] [-q "10 512"] [-f "each none"] [-r RATE] [-s SENDERS]
#
# Environment (flags win): UPGRADES (50), QLENS ("10 512"), FILLS ("each
# none"; also "once"), RATE (500 datagrams/s per sender), SENDERS (2),
# RING_SIZE (64MiB), BENCH_TMPDIR (where the socket and ring go: /dev/shm,
# a tmpfs like /run, when writable; else TMPDIR), NICE (niceness of
# upgrader and the daemon: -20 as root by default, as bench/ingest does, so
# that other work on a shared machine does not stretch the gap; 0 turns it
# off), KEEP (1: keep the working directory, with each run's
# collectord.log).
#
# fill "each": before each upgrade the serving process writes the whole ring
# (4 KiB datagrams until it wraps), as a daemon that has run for a while has:
# closing the ring then unmaps every page, inside the gap. "none": a fresh
# ring and the load only, the best case.
#
# Each qlen other than the host's is set inside a private network namespace
# (unshare -n, root only, loopback brought up for the query listener); the
# host's sysctl is never touched. Without root only the host's value is
# measured. Run it from anywhere inside the checkout; it needs go.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"

# Inner mode, inside unshare -n: set the qlen, bring up lo, run upgrader.
if [[ ${1:-} == --in-netns ]]; then
	qlen=$2
	shift 2
	ip link set lo up
	echo "$qlen" >/proc/sys/net/unix/max_dgram_qlen
	exec "$@"
fi

UPGRADES=${UPGRADES:-50}
QLENS=${QLENS:-"10 512"}
FILLS=${FILLS:-"each none"}
RATE=${RATE:-500}
SENDERS=${SENDERS:-2}
RING_SIZE=${RING_SIZE:-64MiB}
NICE=${NICE:-0}
while getopts "n:q:f:r:s:h" opt; do
	case $opt in
	n) UPGRADES=$OPTARG ;;
	q) QLENS=$OPTARG ;;
	f) FILLS=$OPTARG ;;
	r) RATE=$OPTARG ;;
	s) SENDERS=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
[[ $UPGRADES =~ ^[1-9][0-9]*$ ]] || die "UPGRADES $UPGRADES: want a positive number"

bench_init collectord-upgrade
if [[ ${KEEP:-} == 1 ]]; then
	KEEP_WORK=1
	echo "run.sh: keeping $WORK" >&2
fi

host_qlen=$(cat /proc/sys/net/unix/max_dgram_qlen)
if netns_ok && command -v ip >/dev/null; then
	ns=yes
else
	ns=no
	echo "run.sh: not root, or no unshare -n / ip: measuring the host's max_dgram_qlen ($host_qlen) only" >&2
	QLENS=host
fi

echo "building into $WORK/bin ..." >&2
mkdir -p "$WORK/bin"
(cd "$ROOT" && go build -o "$WORK/bin/" ./cmd/collectord ./bench/upgrade/upgrader)

prefix=()
[[ $NICE != 0 ]] && prefix=(nice -n "$NICE")

printf '| qlen | ring fill | load (dgram/s) | upgrades | gap p50 | gap p99 | gap max | upgrade p50 | upgrade p99 | upgrade max | longest send wait | datagrams sent / stored exactly once |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
status=0
for q in $QLENS; do
	for fill in $FILLS; do
		dir=$WORK/run-$q-$fill
		mkdir -p "$dir"
		cmd=("${prefix[@]}" "$WORK/bin/upgrader" -collectord "$WORK/bin/collectord" -dir "$dir"
			-upgrades "$UPGRADES" -senders "$SENDERS" -rate "$RATE" -ring-size "$RING_SIZE" -fill "$fill")
		if [[ $q != host && $q != "$host_qlen" && $ns == yes ]]; then
			cmd=(unshare -n "$SELF" --in-netns "$q" "${cmd[@]}")
		fi
		if ! "${cmd[@]}" >"$dir/result.json" 2>"$dir/err"; then
			status=1
			echo "run.sh: qlen $q fill $fill failed: $(cat "$dir/err")" >&2
			[[ -s $dir/result.json ]] || continue
		fi
		r=$dir/result.json
		ok=$(jget ok "$r")
		printf '| %s | %s | %s | %s | %s µs | %s µs | %s µs | %s ms | %s ms | %s ms | %s ms | %s / %s%s |\n' \
			"$(jget max_dgram_qlen "$r")" "$fill" "$(jget rate "$r")" "$(jget upgrades "$r")" \
			"$(jget gap_p50_us "$r")" "$(jget gap_p99_us "$r")" "$(jget gap_max_us "$r")" \
			"$(jget upgrade_p50_ms "$r")" "$(jget upgrade_p99_ms "$r")" "$(jget upgrade_max_ms "$r")" \
			"$(jget send_block_max_ms "$r")" "$(jget sent "$r")" "$(jget stored "$r")" \
			"$([[ $ok == true ]] || echo " FAIL: see $r")"
	done
done
echo "run.sh: nice $NICE; load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs; percentiles are nearest-rank (p99 of 50 upgrades is the largest)" >&2
exit $status
