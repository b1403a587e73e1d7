#!/usr/bin/env bash
# Ingest benchmark: how many datagrams per second collectord stores, compared
# with a bare receiver (bench/ingest/baseline) on the same kind of socket,
# for a few sender/size configurations, at net.unix.max_dgram_qlen 10 (the
# kernel default) and 512 (what systemd sets). Every collectord run is
# checked with bench/ingest/verify: every datagram stored once, in order,
# with kernel credentials.
#
#   bench/ingest/run.sh [-r REPEAT] [-q "10 512"] [-f rfc3164|raw]
#
# Environment (flags win): REPEAT (5), QLENS ("10 512"), FORMAT (rfc3164),
# CONFIGS (one "SENDERS SIZE COUNT" per line, COUNT per sender), RING_SIZE
# (256MiB), NICE (-20 as root, else 0), PIN (1: receiver on the last CPU,
# senders on the others; 0: let the scheduler place them), BENCH_TMPDIR
# (where sockets and rings go: /dev/shm, a tmpfs like /run, when writable;
# else TMPDIR).
#
# As root every measurement runs in its own private network namespace
# (unshare -n), which has its own max_dgram_qlen; the daemon, the senders
# and the baseline all run in it and the host's sysctl is never touched.
# Without root only the host's value is measured.
#
# One repetition measures, for every qlen and configuration in turn: the
# baseline with loadgen, then collectord with loadgen (rate = count / time
# from the first send until the ring's head passed the last datagram), then
# SIGTERM and verify. The table reports medians over the repetitions and the
# median of the per-repetition collectord/baseline ratios. Run it from the
# module root or anywhere inside the checkout; it needs go.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"

# ---------------------------------------------------------------------------
# Inner mode: one measurement pair, run (normally) inside unshare -n.
#   run.sh --pair BIN DIR QLEN SENDERS SIZE COUNT FORMAT RING_SIZE
# Prints one tab-separated result line on stdout.
# ---------------------------------------------------------------------------
pair() {
	local bin=$1 dir=$2 qlen=$3 senders=$4 size=$5 count=$6 format=$7 ring_size=$8
	local total=$((senders * count)) tmo=60s
	pin_prefixes
	# Kill whatever this pair started and is still running, on exit. Every
	# child runs in the background and is waited for (step), so a signal is
	# acted on at once rather than after a foreground child ends.
	inner_init

	if [[ $qlen != host ]]; then
		echo "$qlen" >/proc/sys/net/unix/max_dgram_qlen
	fi
	qlen=$(cat /proc/sys/net/unix/max_dgram_qlen)

	# Baseline: bare recvmmsg receiver.
	"${RPIN[@]}" "$bin/baseline" -socket "$dir/b.sock" -expect "$total" -ready "$dir/b.ready" -timeout "$tmo" >"$dir/base.json" &
	local bpid=$!
	PIDS+=("$bpid")
	wait_for 10 "$bpid" test -e "$dir/b.ready" || die "baseline did not start"
	step "${SPIN[@]}" "$bin/loadgen" -socket "$dir/b.sock" -senders "$senders" -size "$size" \
		-count "$count" -format "$format" -timeout "$tmo" >"$dir/lg-base.json" </dev/null || die "loadgen failed"
	wait "$bpid" || die "baseline failed: $(cat "$dir/base.json")"

	# collectord, on a fresh ring.
	start_collectord "$dir/cd.log" "${RPIN[@]}" "$bin/collectord" --socket "$dir/c.sock" --ring "$dir/ring" \
		--ring-size "$ring_size" --query-addr "" --metrics-addr ""
	local cpid=$DPID cpu0 cpu1 flt0 flt1
	cpu0=$(proc_cpu "$cpid")
	flt0=$(proc_minflt "$cpid")
	step "${SPIN[@]}" "$bin/loadgen" -socket "$dir/c.sock" -senders "$senders" -size "$size" \
		-count "$count" -format "$format" -timeout "$tmo" -ring "$dir/ring" >"$dir/lg-cd.json" </dev/null || die "loadgen failed"
	cpu1=$(proc_cpu "$cpid")
	flt1=$(proc_minflt "$cpid")
	kill -TERM "$cpid"
	wait_for_exit "$cpid" || die "collectord did not stop on SIGTERM"
	wait "$cpid" || die "collectord failed: $(tail -3 "$dir/cd.log")"

	local vstatus=ok
	step "$bin/verify" -ring "$dir/ring" -senders "$senders" -count "$count" \
		-pid "$(jget pid "$dir/lg-cd.json")" >"$dir/verify.json" </dev/null || vstatus=FAIL
	[[ -s $dir/verify.json ]] || die "verify printed nothing"

	local start last brate crate bcpu ccpu cflt
	start=$(jget start_unix_nano "$dir/lg-base.json")
	last=$(jget last_unix_nano "$dir/base.json")
	brate=$(awk -v n="$total" -v a="$start" -v b="$last" 'BEGIN { printf "%.0f", n / ((b - a) / 1e9) }')
	crate=$(awk -v r="$(jget stored_rate "$dir/lg-cd.json")" 'BEGIN { printf "%.0f", r }')
	bcpu=$(awk -v c="$(jget cpu "$dir/base.json")" -v n="$total" 'BEGIN { printf "%.3f", c * 1e6 / n }')
	ccpu=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" -v n="$total" \
		'BEGIN { printf "%.3f", (b - a) / hz * 1e6 / n }')
	cflt=$(awk -v a="$flt0" -v b="$flt1" -v n="$total" 'BEGIN { printf "%.4f", (b - a) / n }')
	local v=$dir/verify.json
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$qlen" "$senders" "$size" "$count" "$brate" "$crate" "$bcpu" "$ccpu" \
		"$(jget records "$v")" "$(jget missing "$v")" "$(jget duplicates "$v")" \
		"$(jget out_of_order "$v")" "$(jget ring_lost "$v")" "$vstatus" "$cflt"
}

# proc_minflt PID prints the process's minor page faults (see proc_cpu).
proc_minflt() { awk '{ print $10 }' "/proc/$1/stat"; }

# wait_for_exit PID: up to 30 s.
wait_for_exit() {
	local i
	for ((i = 0; i < 1500; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.02
	done
	return 1
}

if [[ ${1:-} == --pair ]]; then
	shift
	pair "$@"
	exit 0
fi

# ---------------------------------------------------------------------------
# Outer mode.
# ---------------------------------------------------------------------------
REPEAT=${REPEAT:-5}
QLENS=${QLENS:-"10 512"}
FORMAT=${FORMAT:-rfc3164}
RING_SIZE=${RING_SIZE:-256MiB}
CONFIGS=${CONFIGS:-"1 100 400000
4 100 100000
1 1024 200000"}
while getopts "r:q:f:h" opt; do
	case $opt in
	r) REPEAT=$OPTARG ;;
	q) QLENS=$OPTARG ;;
	f) FORMAT=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
[[ $REPEAT =~ ^[1-9][0-9]*$ && $REPEAT -le 100 ]] || die "REPEAT $REPEAT: want 1..100"

bench_init collectord-ingest

# Private namespaces need root; otherwise measure the host's value only.
# As root, also run every measurement at nice -20 so that other work on the
# host (builds, tests) disturbs it less; NICE=0 turns that off.
host_qlen=$(cat /proc/sys/net/unix/max_dgram_qlen)
if netns_ok; then
	ns=yes
	NICE=${NICE:--20}
else
	NICE=${NICE:-0}
	ns=no
	echo "run.sh: not root or no unshare -n: measuring the host's max_dgram_qlen ($host_qlen) only" >&2
	QLENS=host
fi
# Pin the receiver (baseline or collectord) to the last CPU and the senders
# to the others: where the scheduler happens to put them otherwise changes
# the rate twofold (sender and receiver sharing a CPU ping-pong through
# context switches), which drowns what is measured. PIN=0 turns it off.
if pin_cpus; then
	pinning="receiver on CPU $RECV_CPU, senders on CPU $SEND_CPUS"
else
	pinning="no CPU pinning"
fi

echo "building into $WORK/bin ..." >&2
mkdir -p "$WORK/bin"
(cd "$ROOT" && go build -o "$WORK/bin/" ./cmd/collectord ./bench/ingest/loadgen ./bench/ingest/baseline ./bench/ingest/verify)

RESULTS=$WORK/results.tsv
: >"$RESULTS"
t0=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for ((rep = 1; rep <= REPEAT; rep++)); do
	for qlen in $QLENS; do
		while read -r senders size count; do
			[[ -n $senders ]] || continue
			dir=$(mktemp -d "$WORK/run.XXXXXX")
			cmd=(bash "$SELF" --pair "$WORK/bin" "$dir" "$qlen" "$senders" "$size" "$count" "$FORMAT" "$RING_SIZE")
			if [[ $ns == yes ]]; then
				cmd=(unshare -n -- "${cmd[@]}")
			fi
			if [[ $NICE != 0 ]]; then
				cmd=(nice -n "$NICE" "${cmd[@]}")
			fi
			if ! step "${cmd[@]}" >"$dir/line" </dev/null; then
				show_tails "$dir"
				die "measurement failed (qlen $qlen, $senders x $size B)"
			fi
			cat "$dir/line" >>"$RESULTS"
			printf 'rep %d/%d qlen %s %s x %s B: %s\n' "$rep" "$REPEAT" "$qlen" "$senders" "$size" \
				"$(awk -F'\t' '{ printf "baseline %d/s collectord %d/s verify %s", $5, $6, $14 }' "$dir/line")" >&2
			rm -rf "$dir"
		done <<<"$CONFIGS"
	done
done

# Report: medians per (qlen, senders, size).
echo
echo "collectord $(revision), $(nproc) CPUs, $(uname -r), format $FORMAT, ring $RING_SIZE, nice $NICE, $pinning, $REPEAT repetitions, $((SECONDS - t0)) s, load average $load0 before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo
echo "| qlen | senders | size | datagrams | baseline msg/s | collectord msg/s | collectord/baseline | baseline CPU µs/msg | collectord CPU µs/msg | collectord faults/msg | lost | verify |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
awk -F'\t' "$AWK_STATS"'
{
	k = $1 SUBSEP $2 SUBSEP $3
	if (!(k in seen)) { seen[k] = 1; order[++nk] = k; cnt[k] = $4 * $2 }
	b[k] = b[k] " " $5; c[k] = c[k] " " $6; r[k] = r[k] " " ($6 / $5)
	bc[k] = bc[k] " " $7; cc[k] = cc[k] " " $8; fl[k] = fl[k] " " $15
	lost[k] += $10 + $11 + $12 + $13; runs[k]++; if ($14 == "ok") ok[k]++
}
END {
	for (i = 1; i <= nk; i++) {
		k = order[i]; split(k, f, SUBSEP)
		printf "| %s | %s | %s | %d | %.0f | %.0f | %.2f (%s) | %.2f | %.2f | %.3f | %d | %d/%d ok |\n",
			f[1], f[2], f[3], cnt[k], median(b[k]), median(c[k]), median(r[k]), range(r[k], 2),
			median(bc[k]), median(cc[k]), median(fl[k]), lost[k], ok[k] + 0, runs[k]
	}
}' "$RESULTS"
echo
# The target: 1 sender, 100 B, collectord at least 85% of the ceiling, nothing lost.
awk -F'\t' "$AWK_STATS"'
$2 == 1 && $3 == 100 { r[$1] = r[$1] " " ($6 / $5); if ($14 != "ok") bad[$1] = 1; if (!($1 in seen)) { seen[$1] = 1; q[++n] = $1 } }
END {
	for (i = 1; i <= n; i++) {
		m = median(r[q[i]])
		printf "Target (1 sender, 100 B, >= 0.85 of baseline, 0 lost), qlen %s: %.2f, %s\n", q[i], m,
			(m >= 0.85 && !(q[i] in bad)) ? "met" : "NOT met"
	}
}' "$RESULTS"
echo
echo "Raw results (qlen senders size count baseline/s collectord/s baseline_cpu_us collectord_cpu_us records missing dup out_of_order ring_lost verify collectord_faults_per_msg):" >&2
cat "$RESULTS" >&2
awk -F'\t' '$14 != "ok" { bad = 1 } END { exit bad }' "$RESULTS" || die "verify found lost, duplicated or reordered datagrams"
