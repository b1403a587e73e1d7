#!/usr/bin/env bash
# Durable ring benchmark: collectord's ingest rate with a persistent ring
# on the machine's disk (--storage persistent: synced every sync_interval
# and at once for crit records) against the same daemon with its ring on
# tmpfs (--storage volatile), at the ingest benchmark's load
# (INGEST_CONFIGS), alternating which goes first from one repetition to
# the next; medians. Every run is checked with bench/ingest/verify. Then
# one persistent daemon under a sustained load (4 senders x 100 B, about
# SUSTAIN datagrams) with a crit record sent every 50 ms beside it: from its
# metrics, the cost of a sync at the default interval (time and bytes per
# sync) and the time from a crit record's arrival to its being durable
# (p50/p99, upper bounds of the histogram's buckets).
#
#   bench/durable/run.sh [-r REPEAT]
#
# Environment: REPEAT (3), CONFIGS (as bench/ingest), DISK_DIR (where the
# persistent ring goes: a directory on a disk filesystem; default /var/tmp),
# SUSTAIN (8,000,000). The tmpfs ring goes in /dev/shm (BENCH_TMPDIR).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"

REPEAT=${REPEAT:-3}
CONFIGS=${CONFIGS:-$INGEST_CONFIGS}
DISK_DIR=${DISK_DIR:-/var/tmp}
SUSTAIN=${SUSTAIN:-8000000}
while getopts "r:h" opt; do
	case $opt in
	r) REPEAT=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT $REPEAT: want a whole number"
bench_init collectord-durable
[[ $(stat -f -c %T "$WORK") == tmpfs ]] || die "$WORK is not a tmpfs (set BENCH_TMPDIR)"
[[ $(stat -f -c %T "$DISK_DIR") != tmpfs ]] || die "DISK_DIR $DISK_DIR is a tmpfs: want a disk"
DISK=$(mktemp -d "$DISK_DIR/collectord-durable.XXXXXX")
cleanup_hook() { rm -rf "$DISK"; }

mkdir -p "$WORK/bin"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/bin/" ./cmd/collectord ./cmd/logctl ./bench/ingest/loadgen ./bench/ingest/verify)
BIN=$WORK/bin

# daemon STORAGE DIR RING_SIZE: start collectord with its ring in DIR.
daemon() {
	rm -f "$2/ring"
	start_collectord "$WORK/cd.log" "$BIN/collectord" --socket "$WORK/c.sock" --ring "$2/ring" --ring-size "$3" \
		--storage "$1" --query-addr "" --metrics-addr 127.0.0.1:0
	METRICS=$(sed -n 's/.*"msg":"collectord ready".*"metrics_addr":"\([^"]*\)".*/\1/p' "$WORK/cd.log")
}
stop_daemon() {
	kill -TERM "$DPID"
	wait_for_exit "$DPID" || die "collectord did not stop on SIGTERM"
	wait "$DPID" || die "collectord failed: $(tail -3 "$WORK/cd.log")"
}
# metric NAME: its value (the first series) from the daemon's /metrics.
metric() { curl -s "http://$METRICS/metrics" | awk -v n="$1" '$1 == n { print $2; exit }'; }

# one STORAGE DIR SENDERS SIZE COUNT: one verified loadgen run; prints
# its stored rate.
one() {
	local storage=$1 d=$2 senders=$3 size=$4 count=$5 lg=$WORK/lg.json
	daemon "$storage" "$d" "$(ring_for $((senders * count)) "$size")"
	step "$BIN/loadgen" -socket "$WORK/c.sock" -senders "$senders" -size "$size" -count "$count" -ring "$d/ring" -timeout 60s \
		>"$lg" </dev/null || die "loadgen failed"
	step "$BIN/verify" -ring "$d/ring" -senders "$senders" -count "$count" -from "$(jget first_seq "$lg")" \
		-pid "$(jget pid "$lg")" >"$WORK/verify.json" </dev/null || die "verify ($storage): $(cat "$WORK/verify.json")"
	stop_daemon
	jget stored_rate "$lg"
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"
t0=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for ((rep = 1; rep <= REPEAT; rep++)); do
	while read -r senders size count; do
		[[ -n $senders ]] || continue
		if ((rep % 2)); then
			tmpfs=$(one volatile "$WORK" "$senders" "$size" "$count")
			disk=$(one persistent "$DISK" "$senders" "$size" "$count")
		else
			disk=$(one persistent "$DISK" "$senders" "$size" "$count")
			tmpfs=$(one volatile "$WORK" "$senders" "$size" "$count")
		fi
		printf '%s\t%s\t%s\t%s\n' "$senders" "$size" "$tmpfs" "$disk" >>"$RESULTS"
		printf 'rep %d/%d %s x %s B: tmpfs %.0f/s, disk %.0f/s\n' "$rep" "$REPEAT" "$senders" "$size" "$tmpfs" "$disk" >&2
	done <<<"$CONFIGS"
done

# Sustained load on the disk: first alone (the timer's syncs only), then
# with a crit record every 50 ms beside it.
daemon persistent "$DISK" 64MiB
sustain() {
	"$BIN/loadgen" -socket "$WORK/c.sock" -senders 4 -size 100 -count $((SUSTAIN / 4)) -timeout 60s >"$WORK/lg-$1.json" </dev/null &
	LG=$!
	PIDS+=("$LG")
	while [[ $1 == crit ]] && kill -0 "$LG" 2>/dev/null; do
		"$BIN/logctl" send -socket "$WORK/c.sock" -p crit -t bench "crit $crit"
		crit=$((crit + 1))
		sleep 0.05
	done
	wait "$LG" || die "loadgen ($1) failed"
	curl -s "http://$METRICS/metrics" >"$WORK/metrics-$1.txt"
}
crit=0
start=$(date +%s.%N)
sustain alone
alone_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
sustain crit
stop_daemon

echo
echo "collectord $(revision), $(nproc) CPUs, $(uname -r), tmpfs ring in $(stat -f -c %T "$WORK") vs disk ring in $DISK_DIR ($(df --output=fstype,source "$DISK_DIR" | tail -1)), $REPEAT repetitions, $((SECONDS - t0)) s, load average $load0 before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo
echo "| senders | size | tmpfs msg/s | disk msg/s | disk/tmpfs |"
echo "|---:|---:|---:|---:|---:|"
awk -F'\t' "$AWK_STATS"'
{
	k = $1 SUBSEP $2
	if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
	t[k] = t[k] " " $3; d[k] = d[k] " " $4; r[k] = r[k] " " ($4 / $3)
}
END {
	for (i = 1; i <= nk; i++) {
		k = order[i]; split(k, x, SUBSEP)
		printf "| %s | %s | %.0f | %.0f | %.2f (%s) |\n", x[1], x[2], median(t[k]), median(d[k]), median(r[k]), range(r[k], 2)
		met += median(r[k]) >= 0.9
	}
	printf "\nTarget: disk >= 0.9 of tmpfs in every load: %d of %d met\n", met, nk
}' "$RESULTS"
echo
# sync_stats FILE: syncs, bytes, seconds, errors from a metrics scrape.
sync_stats() {
	awk '$1 == "collectord_ring_syncs_total" { s = $2 } $1 == "collectord_ring_sync_bytes_total" { b = $2 }
		$1 == "collectord_ring_sync_seconds_total" { t = $2 } $1 == "collectord_ring_sync_errors_total" { e = $2 }
		END { print s + 0, b + 0, t + 0, e + 0 }' "$1"
}
read -r s1 b1 t1 e1 < <(sync_stats "$WORK/metrics-alone.txt")
read -r s2 b2 t2 _ < <(sync_stats "$WORK/metrics-crit.txt")
awk -v s="$s1" -v b="$b1" -v t="$t1" -v e="$e1" -v d="$alone_s" -v n="$SUSTAIN" 'BEGIN {
	printf "Sustained load alone, 4 x 100 B, %d datagrams in %s s: %d syncs (every 5 s, and at start), %.2f ms and %.0f KiB per sync on average, %d failed\n",
		n, d, s, 1000 * t / s, b / s / 1024, e }'
awk -v crit="$crit" -v s="$((s2 - s1))" -v b="$(awk -v a="$b1" -v c="$b2" 'BEGIN { print c - a }')" \
	-v t="$(awk -v a="$t1" -v c="$t2" 'BEGIN { print c - a }')" '
$1 ~ /^collectord_ring_urgent_durable_seconds_bucket/ { match($1, /le="[^"]*"/); le[++n] = substr($1, RSTART + 4, RLENGTH - 5); c[n] = $2 }
$1 == "collectord_ring_urgent_durable_seconds_count" { total = $2 }
END {
	for (i = 1; i <= n && c[i] < 0.5 * total; i++); p50 = le[i]
	for (i = 1; i <= n && c[i] < 0.99 * total; i++); p99 = le[i]
	printf "Same load with %d crit records beside it (20/s): %d syncs, %.2f ms and %.0f KiB per sync on average\n", crit, s, 1000 * t / s, b / s / 1024
	printf "Crit record arrival to durable: p50 <= %s s, p99 <= %s s (upper bounds of histogram buckets; %d batches with a crit record)\n", p50, p99, total
}' "$WORK/metrics-crit.txt"
