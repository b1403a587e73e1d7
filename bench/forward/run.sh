#!/usr/bin/env bash
# Forwarding to Kafka: what it costs ingest, and how fast the forwarder
# alone goes, against a local three-broker kfake cluster
# (internal/kafkatest/kfaked, franz-go's Kafka implementation, in a
# process of its own).
#
#   bench/forward/run.sh [-r ROUNDS]
#
# 1. Ingest with forwarding on against off, in one run: ROUNDS (5) rounds
#    taking turns off on on off ..., each a fresh 256 MiB ring and the
#    ingest benchmark's load (1 sender, 400,000 100-byte RFC 3164
#    datagrams, blocking writes); rate = count / time until the ring
#    published the last. "on" is the default [kafka] configuration (zstd,
#    json, key hostname; the forwarder yields the CPU while less than 10 s
#    behind); the time until the forwarder had every record acknowledged
#    is reported too. The daemon
#    runs with the default configuration, nothing pinned, not niced. The
#    cluster stands for other machines: it runs at nice 19 so that it
#    takes only the CPU the host leaves (KFAKE_NICE=0 shares it equally).
# 2. The forwarder alone: a ring filled with COUNT (400,000) records of
#    100 B and of 1 KiB, then `collectord forward` (the real process, at
#    nice 0, its configuration on stdin) until every record is
#    acknowledged, for compression zstd and none: records/s, MB/s (of
#    record payloads as logctl's JSON), CPU per record for the forwarder
#    and for the cluster.
#
# Run it from anywhere inside the checkout; it needs go. It cleans up its
# processes and files, also when interrupted.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"

ROUNDS=5
while getopts r: opt; do
	case $opt in
	r) ROUNDS=$OPTARG ;;
	*) die "usage: run.sh [-r ROUNDS]" ;;
	esac
done
COUNT=${COUNT:-400000}
KFAKE_NICE=${KFAKE_NICE:-19}

bench_init collectord-forward
BIN=$WORK/bin
echo "building into $BIN ..." >&2
mkdir -p "$BIN"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$BIN/" ./cmd/collectord ./internal/kafkatest/kfaked \
	./bench/ingest/loadgen ./bench/ingest/verify ./bench/query/qbench)

# The cluster, for the whole run.
mkdir -p "$WORK/kafka"
nice -n "$KFAKE_NICE" "$BIN/kfaked" -data "$WORK/kafka" >"$WORK/kafka.json" 2>"$WORK/kafka.log" &
KPID=$!
PIDS+=("$KPID")
wait_for 30 "$KPID" grep -q brokers "$WORK/kafka.json" || die "kfaked did not start: $(cat "$WORK/kafka.log")"
BROKERS=$(grep -o '"[0-9.]*:[0-9]*"' "$WORK/kafka.json" | paste -sd,)

# config DIR KAFKA: a configuration file for a daemon in DIR, with the
# default [kafka] table when KAFKA is on.
config() {
	printf 'socket = "%s/c.sock"\nring = "%s/ring"\nring_size = "256MiB"\nquery_addr = ""\nquery_socket = ""\nmetrics_addr = ""\n' "$1" "$1" >"$1/c.toml"
	if [[ $2 == on ]]; then
		printf '[kafka]\nbrokers = [%s]\ntopic = "logs"\n' "$BROKERS" >>"$1/c.toml"
	fi
}

# acked_time CURSOR SEQ: seconds until the cursor file says SEQ (up to 120).
acked_time() {
	local t0=$EPOCHREALTIME
	for ((i = 0; i < 12000; i++)); do
		if grep -qx "seq=$2" "$1" 2>/dev/null; then
			awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'
			return
		fi
		sleep 0.01
	done
	die "the forwarder did not acknowledge $2 within 120 s: $(cat "$1" 2>/dev/null)"
}

# 1. Ingest, forwarding off and on.
echo "ingest: $ROUNDS rounds of $COUNT datagrams, forwarding off and on ..." >&2
: >"$WORK/ingest.tsv"
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then order="off on"; else order="on off"; fi
	for mode in $order; do
		dir=$WORK/ingest-$mode-$r
		mkdir -p "$dir"
		config "$dir" "$mode"
		start_collectord "$dir/cd.log" "$BIN/collectord" --config "$dir/c.toml"
		"$BIN/loadgen" -socket "$dir/c.sock" -senders 1 -size 100 -count "$COUNT" -ring "$dir/ring" -timeout 60s \
			>"$dir/lg.json" || die "loadgen failed"
		catchup=-
		if [[ $mode == on ]]; then
			catchup=$(acked_time "$dir/ring.kafka-cursor" "$COUNT")
		fi
		kill -TERM "$DPID"
		wait "$DPID" || die "collectord failed: $(tail -3 "$dir/cd.log")"
		"$BIN/verify" -ring "$dir/ring" -senders 1 -count "$COUNT" -pid "$(jget pid "$dir/lg.json")" >"$dir/v.json" ||
			die "verify failed: $(cat "$dir/v.json")"
		printf '%s\t%s\t%s\t%s\n' "$mode" "$r" "$(jget stored_rate "$dir/lg.json")" "$catchup" >>"$WORK/ingest.tsv"
		rm -rf "$dir"
	done
done
col() { awk -F'\t' -v m="$1" -v c="$2" '$1 == m { print $c }' "$WORK/ingest.tsv"; }
med() { awk "$AWK_STATS"' { s = s " " $1 } END { print median(s) }'; }
off=$(col off 3 | med) on=$(col on 3 | med)
ratio_rounds=$(awk -F'\t' '{ r[$2, $1] = $3 } END { for (k in r) { split(k, p, SUBSEP); if (p[2] == "off") print r[p[1], "on"] / r[p[1], "off"] } }' "$WORK/ingest.tsv" | med)

# 2. The forwarder alone.
echo "forwarder alone: $COUNT records per run ..." >&2
: >"$WORK/alone.tsv"
for size in 100 1024; do
	dir=$WORK/alone-$size
	mkdir -p "$dir"
	config "$dir" off
	start_collectord "$dir/cd.log" "$BIN/collectord" --config "$dir/c.toml"
	"$BIN/loadgen" -socket "$dir/c.sock" -senders 1 -size "$size" -count "$COUNT" -ring "$dir/ring" -timeout 60s >/dev/null
	kill -TERM "$DPID"
	wait "$DPID"
	for comp in zstd none; do
		rm -f "$dir/ring.kafka-cursor"
		mkfifo "$dir/in-$comp"
		"$BIN/collectord" forward <"$dir/in-$comp" >"$dir/reports-$comp.json" 2>"$dir/forward-$comp.log" &
		fpid=$!
		PIDS+=("$fpid")
		exec {fifo}>"$dir/in-$comp"
		k0=$(proc_cpu "$KPID")
		printf '{"ring":"%s/ring","brokers":[%s],"topic":"logs","compression":"%s","host":"bench"}\n' "$dir" "$BROKERS" "$comp" >&"$fifo"
		secs=$(acked_time "$dir/ring.kafka-cursor" "$COUNT")
		fcpu=$(proc_cpu "$fpid") k1=$(proc_cpu "$KPID")
		exec {fifo}>&-
		wait "$fpid" || die "collectord forward failed: $(tail -3 "$dir/forward-$comp.log")"
		bytes=$(tail -1 "$dir/reports-$comp.json" | jget bytes)
		hz=$(getconf CLK_TCK)
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$comp" \
			"$(awk -v n="$COUNT" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')" \
			"$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.1f", b / s / 1e6 }')" \
			"$(awk -v c="$fcpu" -v hz="$hz" -v n="$COUNT" 'BEGIN { printf "%.2f", c / hz * 1e6 / n }')" \
			"$(awk -v a="$k0" -v b="$k1" -v hz="$hz" -v n="$COUNT" 'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / n }')" \
			>>"$WORK/alone.tsv"
	done
	rm -rf "$dir/ring"
done

echo
echo "$(nproc) CPUs, $(uname -r), cluster at nice $KFAKE_NICE; load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
echo
echo "| ingest, 1 sender, 100 B, $COUNT datagrams | forwarding off | forwarding on | on/off |"
echo "|---|---|---|---|"
printf '| median of %s rounds | %.0f k/s | %.0f k/s | %.3f (per-round median %.3f) |\n' "$ROUNDS" \
	"$(awk -v r="$off" 'BEGIN { print r / 1e3 }')" "$(awk -v r="$on" 'BEGIN { print r / 1e3 }')" \
	"$(awk -v a="$off" -v b="$on" 'BEGIN { print b / a }')" "$ratio_rounds"
echo
echo "Rounds (datagrams/s): off $(col off 3 | tr '\n' ' '); on $(col on 3 | tr '\n' ' '). Every record acknowledged by Kafka $(col on 4 | tr '\n' ' ' | sed 's/ $//') s after the last was stored."
echo
echo "| forwarder alone, $COUNT records | records/s | MB/s (JSON values) | forwarder CPU µs/record | cluster CPU µs/record |"
echo "|---|---|---|---|---|"
while IFS=$'\t' read -r size comp rate mbs fcpu kcpu; do
	printf '| %s B, %s | %s | %s | %s | %s |\n' "$size" "$comp" "$rate" "$mbs" "$fcpu" "$kcpu"
done <"$WORK/alone.tsv"
