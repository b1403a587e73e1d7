#!/usr/bin/env bash
# Instrumentation cost: collectord's ingest rate built as shipped (per-datagram
# atomic counters, metrics endpoint scraped every second) versus built with
# -tags noinstrument (internal/ingestloop's counters compile to nothing), in the same
# run, alternating A B A B ... under the ingest benchmark's target load:
# 1 sender, 100-byte rfc3164 datagrams, 400000 of them, blocking writes.
# Every run is checked with bench/ingest/verify (nothing lost, duplicated or
# reordered). Reuses bench/ingest's loadgen and verify.
#
#   bench/instrument/run.sh [-r REPEAT]
#
# Environment (flags win): REPEAT (7), COUNT (400000), SIZE (100), QLEN (512;
# "host" keeps the namespace's default), RING_SIZE (256MiB), NICE (-20 as
# root, else 0), PIN (1: collectord on the last CPU, loadgen and the scraper
# on the others), SCRAPE (1 s; 0 turns scraping off), BENCH_TMPDIR.
#
# As root every measurement runs in its own network namespace (unshare -n),
# with lo up for the metrics endpoint (127.0.0.1:9100) and its own
# max_dgram_qlen. Without root it runs on the host, metrics on
# 127.0.0.1:$METRICS_PORT (19100).
#
# Rate = datagrams / time from loadgen's first send until the ring's
# published head passed the last one (loadgen -ring). The report gives the
# median rate of each build, the median of the per-pair ratios
# instrumented/uninstrumented, and the cost 1 - ratio in percent.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"

# ---------------------------------------------------------------------------
# Inner mode: one measurement, normally inside unshare -n.
#   run.sh --one COLLECTORD BIN DIR QLEN SIZE COUNT RING_SIZE PORT SCRAPE
# Prints: rate cpu_us_per_msg scrapes_ok scrapes_failed verify missing dup ooo ring_lost
# ---------------------------------------------------------------------------
one() {
	local cd=$1 bin=$2 dir=$3 qlen=$4 size=$5 count=$6 ring_size=$7 port=$8 scrape=$9
	local maddr="" spid=
	pin_prefixes
	inner_init
	if [[ ${INNS:-} == yes ]]; then
		ip link set lo up
		[[ $qlen == host ]] || echo "$qlen" >/proc/sys/net/unix/max_dgram_qlen
	fi
	[[ $scrape == 0 ]] || maddr=127.0.0.1:$port

	start_collectord "$dir/cd.log" "${RPIN[@]}" "$cd" --socket "$dir/c.sock" --ring "$dir/ring" --ring-size "$ring_size" \
		--query-addr "" --query-socket "" --metrics-addr "$maddr"
	local cpid=$DPID

	# The scraper: one GET /metrics at once, then every $scrape seconds,
	# until killed; one line per scrape, "ok" or "fail".
	: >"$dir/scrapes"
	if [[ $scrape != 0 ]]; then
		(
			while :; do
				if "${SPIN[@]}" curl -sf -m 2 -o /dev/null "http://$maddr/metrics"; then
					echo ok
				else
					echo fail
				fi
				sleep "$scrape"
			done
		) >>"$dir/scrapes" 2>/dev/null &
		spid=$!
		PIDS+=("$spid")
	fi

	local cpu0 cpu1
	cpu0=$(proc_cpu "$cpid")
	step "${SPIN[@]}" "$bin/loadgen" -socket "$dir/c.sock" -senders 1 -size "$size" -count "$count" \
		-format rfc3164 -timeout 60s -ring "$dir/ring" >"$dir/lg.json" </dev/null || die "loadgen failed"
	cpu1=$(proc_cpu "$cpid")
	if [[ $scrape != 0 ]]; then
		kill -KILL "$spid" 2>/dev/null || true
		wait "$spid" 2>/dev/null || true # and no "Killed" notice
	fi
	kill -TERM "$cpid"
	wait "$cpid" || die "collectord failed: $(tail -3 "$dir/cd.log")"

	local vstatus=ok v=$dir/verify.json
	"$bin/verify" -ring "$dir/ring" -senders 1 -count "$count" -pid "$(jget pid "$dir/lg.json")" >"$v" || vstatus=FAIL
	[[ -s $v ]] || die "verify printed nothing"
	printf '%.0f\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n' \
		"$(jget stored_rate "$dir/lg.json")" \
		"$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" -v n="$count" 'BEGIN { printf "%.3f", (b - a) / hz * 1e6 / n }')" \
		"$(grep -c '^ok' "$dir/scrapes" || true)" "$(grep -c '^fail' "$dir/scrapes" || true)" \
		"$vstatus" "$(jget missing "$v")" "$(jget duplicates "$v")" "$(jget out_of_order "$v")" "$(jget ring_lost "$v")"
}

if [[ ${1:-} == --one ]]; then
	shift
	one "$@"
	exit 0
fi

# ---------------------------------------------------------------------------
# Outer mode.
# ---------------------------------------------------------------------------
REPEAT=${REPEAT:-7}
while getopts r: opt; do
	case $opt in
	r) REPEAT=$OPTARG ;;
	*) die "usage: run.sh [-r REPEAT]" ;;
	esac
done
[[ $REPEAT =~ ^[1-9][0-9]*$ && $REPEAT -le 100 ]] || die "REPEAT $REPEAT: want 1..100"
COUNT=${COUNT:-400000} SIZE=${SIZE:-100} QLEN=${QLEN:-512} RING_SIZE=${RING_SIZE:-256MiB} SCRAPE=${SCRAPE:-1}

bench_init collectord-instrument

if netns_ok; then
	ns=yes PORT=9100
	NICE=${NICE:--20}
else
	ns=no PORT=${METRICS_PORT:-19100}
	NICE=${NICE:-0}
	QLEN=host
	echo "run.sh: not root or no unshare -n: host network and max_dgram_qlen" >&2
fi
if pin_cpus; then
	pinning="collectord on CPU $RECV_CPU, loadgen and scraper on CPU $SEND_CPUS"
else
	pinning="no CPU pinning"
fi
command -v curl >/dev/null || { [[ $SCRAPE == 0 ]] || die "curl not found (SCRAPE=0 to run without scraping)"; }

echo "building into $WORK ..." >&2
mkdir -p "$WORK/bin" "$WORK/on" "$WORK/off"
(
	cd "$ROOT"
	go build -o "$WORK/bin/" ./bench/ingest/loadgen ./bench/ingest/verify
	go build -o "$WORK/on/" ./cmd/collectord
	go build -tags noinstrument -o "$WORK/off/" ./cmd/collectord
)

RESULTS=$WORK/results.tsv
: >"$RESULTS"
t0=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for ((rep = 1; rep <= REPEAT; rep++)); do
	for build in on off; do
		dir=$(mktemp -d "$WORK/run.XXXXXX")
		scrape=$SCRAPE
		[[ $build == on ]] || scrape=0
		cmd=(env INNS=$ns bash "$SELF" --one "$WORK/$build/collectord" "$WORK/bin" "$dir" "$QLEN" "$SIZE" "$COUNT" "$RING_SIZE" "$PORT" "$scrape")
		[[ $ns == yes ]] && cmd=(unshare -n -- "${cmd[@]}")
		[[ $NICE == 0 ]] || cmd=(nice -n "$NICE" "${cmd[@]}")
		if ! step "${cmd[@]}" >"$dir/line" </dev/null; then
			show_tails "$dir"
			die "measurement failed (rep $rep, $build)"
		fi
		printf '%d\t%s\t%s\n' "$rep" "$build" "$(cat "$dir/line")" >>"$RESULTS"
		printf 'rep %d/%d %-3s %s\n' "$rep" "$REPEAT" "$build" \
			"$(awk -F'\t' '{ printf "%d/s, %s µs/msg, scrapes %d ok %d failed, verify %s", $1, $2, $3, $4, $5 }' "$dir/line")" >&2
		rm -rf "$dir"
	done
done

echo
echo "collectord $(revision), $(nproc) CPUs, $(uname -r), 1 sender x $COUNT x $SIZE B rfc3164, qlen $QLEN, nice $NICE, $pinning, scrape every ${SCRAPE}s (instrumented only), $REPEAT pairs, $((SECONDS - t0)) s, load average $load0 before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo
awk -F'\t' "$AWK_STATS"'
{
	rate[$2] = rate[$2] " " $3; cpu[$2] = cpu[$2] " " $4; sok[$2] += $5; sfail[$2] += $6
	lost[$2] += $8 + $9 + $10 + $11; runs[$2]++; if ($7 == "ok") ok[$2]++
	r[$1, $2] = $3
}
END {
	for (k = 1; k <= runs["on"]; k++) if ((k, "off") in r) { ratio = ratio " " (r[k, "on"] / r[k, "off"]) }
	print "| build | median msg/s | median CPU µs/msg | scrapes ok/failed | lost | verify |"
	print "|---|---:|---:|---:|---:|---|"
	split("on off", b, " "); name["on"] = "default (instrumented, scraped)"; name["off"] = "-tags noinstrument"
	for (i = 1; i <= 2; i++) {
		k = b[i]
		printf "| %s | %.0f | %.2f | %d/%d | %d | %d/%d ok |\n", name[k], median(rate[k]), median(cpu[k]), sok[k], sfail[k], lost[k], ok[k] + 0, runs[k]
	}
	m = median(ratio)
	printf "\nRatio instrumented/uninstrumented: %.3f (median of %d pairs, range %s; ratio of medians %.3f)\n", m, split(ratio, t, " "), range(ratio, 3), median(rate["on"]) / median(rate["off"])
	printf "Instrumentation cost: %.1f%% of ingest rate (target < 3%%): %s\n", (1 - m) * 100, (1 - m < 0.03) ? "met" : "NOT met"
	if (sfail["on"] > 0) print "Note: some scrapes of /metrics failed (endpoint missing or not serving?)"
}' "$RESULTS"
echo
echo "Raw results (rep build rate cpu_us_per_msg scrapes_ok scrapes_failed verify missing dup out_of_order ring_lost):" >&2
cat "$RESULTS" >&2
awk -F'\t' '$7 != "ok" { bad = 1 } END { exit bad }' "$RESULTS" || die "verify found lost, duplicated or reordered datagrams"
