#!/usr/bin/env bash
# Ingest benchmark: how many datagrams per second collectord stores,
# against the ceiling: the most this host receives on the same kind of
# socket (bench/ingest/ceiling, a bare blocking recvmmsg loop that shares
# no code with the daemon). For each qlen (net.unix.max_dgram_qlen: 10, the
# kernel default, and 512, what systemd sets) and each load (senders x
# datagram size) it reports both rates and their ratio, on a fresh ring and
# on one that has wrapped, the CPU time per datagram of both, and the share
# of a non-blocking sender's datagrams each socket refused. Every collectord
# run is checked with bench/ingest/verify: every datagram stored once, in
# order, with kernel credentials.
#
#   bench/ingest/run.sh [-r REPEAT] [-q "10 512"] [-f rfc3164|raw] [-l]
#
# Environment (flags win): REPEAT (3), QLENS ("10 512"), FORMAT (rfc3164),
# CONFIGS (one "SENDERS SIZE COUNT" per line, COUNT per sender; default
# 400,000 datagrams each of 1 x 100 B, 4 x 100 B, 1 x 1000 B, 4 x 1000 B),
# RING_SIZE (in MiB, as 256MiB; default: per load, the smallest power of
# two of at least 64 MiB holding the run with a fifth to spare), LOOP (1 or -l: also
# measure bench/ingest/baseline, the daemon's own receive loop doing
# nothing), NICE (0), PIN (0; 1 puts the receiver on the last CPU and the
# senders on the others), BENCH_TMPDIR (where sockets and rings go:
# /dev/shm, a tmpfs like /run, when writable; else TMPDIR).
#
# The headline figures are NICE=0 PIN=0: nothing pinned, not niced, as a
# daemon runs. collectord runs as installed: built with CGO_ENABLED=0, the
# default configuration, its query and metrics servers on (loopback,
# ephemeral ports), the ring on tmpfs.
#
# As root every measurement runs in its own private network namespace
# (unshare -n, lo up), which has its own max_dgram_qlen; the daemon, the
# senders and the ceiling all run in it and the host's sysctl is never
# touched. Without root only the host's value is measured.
#
# One measurement (one repetition of one qlen and load) runs, in an order
# that alternates between repetitions, the ceiling and collectord:
#   ceiling: loadgen with blocking senders, then with dropping ones;
#   collectord, one daemon on a new ring: loadgen (fresh ring: the run is
#     the ring's first lap); then datagrams of 60,000 bytes, unmeasured,
#     until the ring has wrapped; loadgen again (wrapped ring); loadgen
#     with dropping senders; verify after each of the three.
# Rate = count / time from loadgen's first send until the ceiling received
# the last datagram, or until collectord's ring published it (loadgen
# -ring). CPU per datagram: the ceiling's own getrusage from "ready" to the
# last datagram; collectord's from /proc around loadgen. Refused share:
# the same senders, non-blocking and never waiting (loadgen -drop, as a
# logger that must not block): the share of their datagrams the full
# socket refused with EAGAIN, which they dropped (the rest must all be
# stored: the ceiling counts them, verify checks collectord's ring; 1 -
# refused is the stored share). The table gives medians over the repetitions; the ratios
# are the medians of the per-repetition ratios. Run it from anywhere inside
# the checkout; it needs go.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"

# ---------------------------------------------------------------------------
# Inner mode: one measurement, run (normally) inside unshare -n.
#   run.sh --cell BIN DIR QLEN SENDERS SIZE COUNT FORMAT RING_SIZE ORDER LOOP
# ORDER is "ceiling-first" or "collectord-first"; LOOP 1 also measures the
# baseline. Prints one tab-separated line on stdout (see FIELDS below).
# ---------------------------------------------------------------------------
cell() {
	local bin=$1 dir=$2 qlen=$3 senders=$4 size=$5 count=$6 format=$7 ring_size=$8 order=$9 loop=${10}
	TOTAL=$((senders * count)) TMO=60s
	LOADGEN=("$bin/loadgen" -senders "$senders" -size "$size" -count "$count" -format "$format" -timeout "$TMO")
	pin_prefixes
	# Kill whatever this measurement started and still runs, on exit.
	# Every child runs in the background and is waited for (step), so a
	# signal is acted on at once rather than after a foreground child ends.
	inner_init
	if [[ $qlen != host ]]; then
		ip link set lo up
		echo "$qlen" >/proc/sys/net/unix/max_dgram_qlen
	fi
	qlen=$(cat /proc/sys/net/unix/max_dgram_qlen)

	if [[ $order == ceiling-first ]]; then
		ceiling_runs "$bin"
		collectord_runs "$bin" "$ring_size"
	else
		collectord_runs "$bin" "$ring_size"
		ceiling_runs "$bin"
	fi
	local lrate=- lcpu=-
	if [[ $loop == 1 ]]; then
		bare "$bin/baseline" loop 0
		lrate=$(rate loop) lcpu=$(jcpu loop)
	fi

	# FIELDS: qlen senders size count | ceiling rate cpu | fresh rate cpu
	# faults | wrapped rate cpu faults | refused ceiling collectord |
	# verify lost | loop rate cpu
	local vstatus=ok lost=0 v
	for v in fresh wrapped drop; do
		[[ $(jget ok "$dir/verify-$v.json") == true ]] || vstatus=FAIL
		# Missing, less what the sender dropped itself.
		lost=$((lost + $(jget missing "$dir/verify-$v.json") - $(jget dropped "$dir/lg-$v.json") + $(jget duplicates "$dir/verify-$v.json") +
			$(jget out_of_order "$dir/verify-$v.json") + $(jget ring_lost "$dir/verify-$v.json")))
	done
	local out=("$qlen" "$senders" "$size" "$count"
		"$(rate ceiling)" "$(jcpu ceiling)"
		"$(rate fresh)" "$(cd_cpu fresh)" "$(cd_faults fresh)"
		"$(rate wrapped)" "$(cd_cpu wrapped)" "$(cd_faults wrapped)"
		"$(refused ceiling-drop)" "$(refused drop)" "$vstatus" "$lost" "$lrate" "$lcpu")
	(
		IFS=$'\t'
		echo "${out[*]}"
	)
}

# bare BINARY NAME IDLE [LOADGEN FLAGS...]: a receiver that exits after
# TOTAL datagrams (ceiling or baseline, which take the same flags), or with
# IDLE other than 0 (ceiling only) once none came for IDLE, fed by loadgen;
# their results in DIR/NAME.json and DIR/lg-NAME.json. The receiver must
# get every datagram loadgen did not drop.
bare() {
	local prog=$1 name=$2 idle=$3 pid got want
	shift 3
	local flags=(-socket "$dir/b.sock" -expect "$TOTAL" -ready "$dir/b.ready" -timeout "$TMO")
	[[ $idle == 0 ]] || flags+=(-idle "$idle")
	rm -f "$dir/b.ready"
	"${RPIN[@]}" "$prog" "${flags[@]}" >"$dir/$name.json" &
	pid=$!
	PIDS+=("$pid")
	wait_for 10 "$pid" test -e "$dir/b.ready" || die "$prog did not start"
	step "${SPIN[@]}" "${LOADGEN[@]}" -socket "$dir/b.sock" "$@" >"$dir/lg-$name.json" </dev/null || die "loadgen failed"
	wait "$pid" || die "$prog failed: $(cat "$dir/$name.json")"
	got=$(jget received "$dir/$name.json") want=$((TOTAL - $(jget dropped "$dir/lg-$name.json")))
	[[ $got == "$want" ]] || die "$prog received $got datagrams, want $want"
}

# ceiling_runs BIN: the ceiling with blocking, then dropping senders. With
# dropping senders it cannot know how many will arrive: it ends 2 s after
# the last one (less once cut it off while a busy host held the senders).
ceiling_runs() {
	bare "$1/ceiling" ceiling 0
	bare "$1/ceiling" ceiling-drop 2s -drop
}

# collectord_runs BIN RING_SIZE: one daemon, as installed, on a new ring:
# fresh, wrapped and non-blocking runs, each verified.
collectord_runs() {
	local bin=$1 ring_size=$2 lap
	start_collectord "$dir/cd.log" "${RPIN[@]}" "$bin/collectord" --socket "$dir/c.sock" --ring "$dir/ring" \
		--ring-size "$ring_size" --query-addr 127.0.0.1:0 --query-socket "$dir/query.sock" --metrics-addr 127.0.0.1:0
	local cpid=$DPID
	cd_run "$bin" "$cpid" fresh
	# One lap and more: datagrams of 60,000 bytes adding up to the ring's
	# size, from another loadgen process (verify -pid tells them apart).
	lap=$(((${ring_size%MiB} << 20) / 60000 + 1))
	step "$bin/loadgen" -socket "$dir/c.sock" -size 60000 -count "$lap" -format raw -timeout "$TMO" \
		-ring "$dir/ring" >"$dir/lg-lap.json" </dev/null || die "loadgen (one lap) failed"
	cd_run "$bin" "$cpid" wrapped
	cd_run "$bin" "$cpid" drop -drop
	kill -TERM "$cpid"
	wait_for_exit "$cpid" || die "collectord did not stop on SIGTERM"
	wait "$cpid" || die "collectord failed: $(tail -3 "$dir/cd.log")"
}

# cd_run BIN PID NAME [LOADGEN FLAGS...]: loadgen into collectord (pid
# PID), its CPU ticks and minor faults around it, then verify the run.
cd_run() {
	local bin=$1 cpid=$2 name=$3 lg
	shift 3
	lg=$dir/lg-$name.json
	echo "$(proc_cpu "$cpid") $(proc_minflt "$cpid")" >"$dir/$name.before"
	step "${SPIN[@]}" "${LOADGEN[@]}" -socket "$dir/c.sock" -ring "$dir/ring" "$@" >"$lg" </dev/null ||
		die "loadgen ($name) failed"
	echo "$(proc_cpu "$cpid") $(proc_minflt "$cpid")" >"$dir/$name.after"
	local status=0
	step "$bin/verify" -ring "$dir/ring" -senders "$senders" -count "$count" -from "$(jget first_seq "$lg")" \
		-pid "$(jget pid "$lg")" -dropped "$(jget dropped "$lg")" >"$dir/verify-$name.json" </dev/null || status=$?
	[[ -s $dir/verify-$name.json ]] || die "verify printed nothing"
	# Keep verify's verdict next to its counts.
	sed -i "s/}\$/,\"ok\":$([[ $status == 0 ]] && echo true || echo false)}/" "$dir/verify-$name.json"
}

# rate NAME: datagrams per second of run NAME: loadgen's stored rate
# (collectord), else count / (the receiver's last datagram - first send).
rate() {
	local lg=$dir/lg-$1.json
	if [[ -e $dir/$1.json ]]; then
		awk -v n="$TOTAL" -v a="$(jget start_unix_nano "$lg")" -v b="$(jget last_unix_nano "$dir/$1.json")" \
			'BEGIN { printf "%.0f", n / ((b - a) / 1e9) }'
	else
		awk -v r="$(jget stored_rate "$lg")" 'BEGIN { printf "%.0f", r }'
	fi
}

# jcpu NAME: CPU µs per datagram a bare receiver reported.
jcpu() { awk -v c="$(jget cpu "$dir/$1.json")" -v n="$TOTAL" 'BEGIN { printf "%.3f", c * 1e6 / n }'; }

# cd_cpu NAME, cd_faults NAME: collectord's CPU µs and minor faults per
# datagram during run NAME.
cd_cpu() {
	awk -v hz="$(getconf CLK_TCK)" -v n="$TOTAL" 'NR == 1 { a = $1 } END { printf "%.3f", ($1 - a) / hz * 1e6 / n }' \
		"$dir/$1.before" "$dir/$1.after"
}
cd_faults() {
	awk -v n="$TOTAL" 'NR == 1 { a = $2 } END { printf "%.4f", ($2 - a) / n }' "$dir/$1.before" "$dir/$1.after"
}

# refused NAME: the share of datagrams loadgen dropped in run NAME.
refused() {
	awk -v d="$(jget dropped "$dir/lg-$1.json")" -v n="$TOTAL" 'BEGIN { printf "%.4f", d / n }'
}

# proc_minflt PID prints the process's minor page faults (see proc_cpu).
proc_minflt() { awk '{ print $10 }' "/proc/$1/stat"; }

if [[ ${1:-} == --cell ]]; then
	shift
	cell "$@"
	exit 0
fi

# ---------------------------------------------------------------------------
# Outer mode.
# ---------------------------------------------------------------------------
REPEAT=${REPEAT:-3}
QLENS=${QLENS:-"10 512"}
FORMAT=${FORMAT:-rfc3164}
RING_SIZE=${RING_SIZE:-}
LOOP=${LOOP:-0}
NICE=${NICE:-0}
PIN=${PIN:-0}
CONFIGS=${CONFIGS:-$INGEST_CONFIGS}
while getopts "r:q:f:lh" opt; do
	case $opt in
	r) REPEAT=$OPTARG ;;
	q) QLENS=$OPTARG ;;
	f) FORMAT=$OPTARG ;;
	l) LOOP=1 ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
[[ $REPEAT =~ ^[1-9][0-9]*$ && $REPEAT -le 100 ]] || die "REPEAT $REPEAT: want 1..100"
[[ -z $RING_SIZE || $RING_SIZE =~ ^[1-9][0-9]*MiB$ ]] || die "RING_SIZE $RING_SIZE: want a size in MiB, as 256MiB"

bench_init collectord-ingest

# Private namespaces need root; otherwise measure the host's value only.
host_qlen=$(cat /proc/sys/net/unix/max_dgram_qlen)
if netns_ok; then
	ns=yes
else
	ns=no
	echo "run.sh: not root or no unshare -n: measuring the host's max_dgram_qlen ($host_qlen) only" >&2
	QLENS=host
fi
# PIN=1: the receiver on the last CPU and the senders on the others, which
# steadies the figures on a noisy host (see README) but is not how a
# daemon runs.
if pin_cpus; then
	pinning="receiver on CPU $RECV_CPU, senders on CPU $SEND_CPUS"
else
	pinning="nothing pinned"
fi

echo "building into $WORK/bin ..." >&2
mkdir -p "$WORK/bin"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/bin/" ./cmd/collectord ./bench/ingest/loadgen \
	./bench/ingest/ceiling ./bench/ingest/baseline ./bench/ingest/verify)

RESULTS=$WORK/results.tsv
: >"$RESULTS"
t0=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
rings=
for ((rep = 1; rep <= REPEAT; rep++)); do
	order=ceiling-first
	((rep % 2)) || order=collectord-first
	for qlen in $QLENS; do
		while read -r senders size count; do
			[[ -n $senders ]] || continue
			ring=${RING_SIZE:-$(ring_for $((senders * count)) "$size")}
			[[ " $rings " == *" $ring "* ]] || rings="$rings $ring"
			dir=$(mktemp -d "$WORK/run.XXXXXX")
			cmd=(bash "$SELF" --cell "$WORK/bin" "$dir" "$qlen" "$senders" "$size" "$count" "$FORMAT" "$ring" "$order" "$LOOP")
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
				"$(awk -F'\t' '{ printf "ceiling %d/s, collectord fresh %d/s wrapped %d/s, refused %.3f / %.3f, verify %s", $5, $7, $10, $13, $14, $15 }' "$dir/line")" >&2
			rm -rf "$dir"
		done <<<"$CONFIGS"
	done
done

# Report: medians per (qlen, senders, size), in the order measured.
echo
echo "collectord $(revision), $(nproc) CPUs, $(uname -r), format $FORMAT, rings${rings} on tmpfs, nice $NICE, $pinning, $REPEAT repetitions, $((SECONDS - t0)) s, load average $load0 before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo
loop_head='' loop_rule=''
if [[ $LOOP == 1 ]]; then
	loop_head=" loop msg/s | loop/ceiling | loop CPU µs/msg |"
	loop_rule="---:|---:|---:|"
fi
echo "| qlen | senders | size | datagrams | ceiling msg/s | collectord msg/s, fresh ring | wrapped ring | fresh/ceiling | wrapped/ceiling | ceiling CPU µs/msg | collectord CPU µs/msg, fresh | wrapped | refused, ceiling | refused, collectord | collectord faults/msg, fresh |$loop_head lost | verify |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|$loop_rule---:|---|"
awk -F'\t' -v loop="$LOOP" "$AWK_STATS"'
{
	k = $1 SUBSEP $2 SUBSEP $3
	if (!(k in seen)) { seen[k] = 1; order[++nk] = k; cnt[k] = $4 * $2 }
	c[k] = c[k] " " $5; cc[k] = cc[k] " " $6
	f[k] = f[k] " " $7; fc[k] = fc[k] " " $8; ff[k] = ff[k] " " $9; fr[k] = fr[k] " " ($7 / $5)
	w[k] = w[k] " " $10; wc[k] = wc[k] " " $11; wr[k] = wr[k] " " ($10 / $5)
	rc[k] = rc[k] " " $13; rd[k] = rd[k] " " $14
	l[k] = l[k] " " $17; lc[k] = lc[k] " " $18; lr[k] = lr[k] " " ($17 / $5)
	lost[k] += $16; runs[k]++; if ($15 == "ok") ok[k]++
}
END {
	for (i = 1; i <= nk; i++) {
		k = order[i]; split(k, x, SUBSEP)
		printf "| %s | %s | %s | %d | %.0f | %.0f | %.0f | %.2f (%s) | %.2f (%s) | %.2f | %.2f | %.2f | %.1f %% | %.1f %% | %.3f |",
			x[1], x[2], x[3], cnt[k], median(c[k]), median(f[k]), median(w[k]),
			median(fr[k]), range(fr[k], 2), median(wr[k]), range(wr[k], 2),
			median(cc[k]), median(fc[k]), median(wc[k]), 100 * median(rc[k]), 100 * median(rd[k]), median(ff[k])
		if (loop == 1) printf " %.0f | %.2f | %.2f |", median(l[k]), median(lr[k]), median(lc[k])
		printf " %d | %d/%d ok |\n", lost[k], ok[k] + 0, runs[k]
	}
}' "$RESULTS"
echo
# The issue-13 shape: one column per load, one row per figure.
awk -F'\t' "$AWK_STATS"'
{
	q = $1; ld = $3 " B ×" $2; k = q SUBSEP ld
	if (!(q in qs)) { qs[q] = 1; qo[++nq] = q }
	if (!(ld in ls)) { ls[ld] = 1; lo[++nl] = ld }
	c[k] = c[k] " " $5; fr[k] = fr[k] " " ($7 / $5); wr[k] = wr[k] " " ($10 / $5)
}
END {
	printf "| max_dgram_qlen |"; for (j = 1; j <= nl; j++) printf " %s |", lo[j]; printf "\n|---|"
	for (j = 1; j <= nl; j++) printf "---|"; printf "\n"
	for (i = 1; i <= nq; i++) {
		q = qo[i]
		printf "| %s: ceiling msgs/s |", q; for (j = 1; j <= nl; j++) printf " %.0fk |", median(c[q SUBSEP lo[j]]) / 1000; printf "\n"
		printf "| %s: collectord / ceiling, fresh ring |", q; for (j = 1; j <= nl; j++) printf " %.2f |", median(fr[q SUBSEP lo[j]]); printf "\n"
		printf "| %s: collectord / ceiling, wrapped ring |", q; for (j = 1; j <= nl; j++) printf " %.2f |", median(wr[q SUBSEP lo[j]]); printf "\n"
	}
}' "$RESULTS"
echo
# Issue 13's targets: collectord >= 0.9 of the ceiling in every cell, fresh
# and wrapped, nothing lost; at qlen 512 a non-blocking sender's stored
# share (1 - refused) with collectord >= 0.9 of the ceiling's.
awk -F'\t' "$AWK_STATS"'
{
	k = $1 SUBSEP $2 SUBSEP $3
	if (!(k in seen)) { seen[k] = 1; order[++nk] = k; label[k] = sprintf("qlen %s, %s x %s B", $1, $2, $3) }
	fr[k] = fr[k] " " ($7 / $5); wr[k] = wr[k] " " ($10 / $5); if ($15 != "ok") bad = 1
	if ($1 == 512) { sc[k] = sc[k] " " (1 - $13); sd[k] = sd[k] " " (1 - $14) }
}
END {
	n = met = 0
	for (i = 1; i <= nk; i++) {
		k = order[i]
		n += 2; met += (median(fr[k]) >= 0.9) + (median(wr[k]) >= 0.9)
	}
	printf "Target: collectord >= 0.9 of the ceiling in every cell, fresh and wrapped ring, 0 lost: %d of %d met, %s; %s\n",
		met, n, bad ? "verify FAILED" : "0 lost", (met == n && !bad) ? "met" : "NOT met"
	for (i = 1; i <= nk; i++) {
		k = order[i]
		if (!(k in sc)) continue
		s = median(sd[k]) / median(sc[k])
		printf "Target: %s, non-blocking sender, stored share collectord / ceiling >= 0.9: %.3f / %.3f = %.2f, %s\n",
			label[k], median(sd[k]), median(sc[k]), s, (s >= 0.9 ? "met" : "NOT met")
	}
}' "$RESULTS"
echo
echo "Raw results (qlen senders size count | ceiling/s cpu_us | fresh/s cpu_us faults | wrapped/s cpu_us faults | refused_ceiling refused_collectord | verify lost | loop/s loop_cpu_us):" >&2
cat "$RESULTS" >&2
awk -F'\t' '$15 != "ok" { bad = 1 } END { exit bad }' "$RESULTS" || die "verify found lost, duplicated or reordered datagrams"
