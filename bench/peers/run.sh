#!/usr/bin/env bash
# Peers: the ingest benchmark's load, in one run, against the collectors
# users compare collectord with: busybox syslogd (-C, its shared-memory
# ring), rsyslog (imuxsock into a file) and systemd-journald, and against
# collectord and the ceiling (bench/ingest/ceiling, the most this host
# receives on such a socket), taking turns. For each it reports datagrams
# stored per second, the ratio to the ceiling, CPU time per datagram and
# how many datagrams its store lacks.
#
#   bench/peers/run.sh [-r REPEAT] [-q "10 512"]
#
# Environment (flags win): REPEAT (3), QLENS ("512": what systemd sets, so
# what hosts running journald or rsyslog under systemd have; "10 512"
# takes twice as long, about 20 minutes on 2 CPUs), CONFIGS (one
# "SENDERS SIZE COUNT" per line, COUNT per sender; default 400,000 RFC 3164
# datagrams each of 1 x 100 B, 4 x 100 B, 1 x 1000 B, 4 x 1000 B), PEERS
# ("ceiling collectord busybox rsyslog journald"), QUIET (1s: how long a
# peer must be idle to count as done), BENCH_TMPDIR (/dev/shm when
# writable: every store is on tmpfs).
#
# It needs root: every measurement runs in its own network, mount and IPC
# namespaces (unshare -n -m -i), with its own net.unix.max_dgram_qlen, lo
# up, and whatever the peer needs mounted privately; nothing of the host's
# logging (its /dev/log, /run/systemd/journal, journal files, rsyslog
# configuration, System V IPC) is used or touched. Missing peers are
# installed from Debian (apt-get update; apt-get install -y busybox rsyslog
# systemd); where packages start their services on installation (a
# systemd host without a policy-rc.d), that starts the host's rsyslog
# service, which this script never uses.
#
# What each peer is given (the same for every load; ring sizes by load):
#   ceiling     bench/ingest/ceiling on DIR/k.sock (8 MiB SO_RCVBUF).
#   collectord  as installed: CGO_ENABLED=0 build, default configuration,
#               query and metrics servers on (loopback, ephemeral ports),
#               a fresh ring on tmpfs holding the run (ring_for in lib.sh:
#               128 MiB for 100 B, 512 MiB for 1000 B).
#   busybox     busybox syslogd -n -C<KiB>: a System V shared-memory ring
#               of the same size as collectord's, on /dev/log (a private
#               tmpfs on /dev with only null and the host's /dev/shm).
#               Debian's build reads at most 1023 bytes of a datagram:
#               the 1000-byte loads are stored whole.
#   rsyslog     rsyslogd -n -f CONF -i PIDFILE; CONF: its own work
#               directory, imuxsock on DIR/rs.sock only (SysSock.Use off)
#               with rate limiting off (RateLimit.Interval 0), and one
#               action: every message to DIR/messages (omfile, the default
#               file template, RSYSLOG_FileFormat).
#   journald    systemd-journald, standalone, in a private mount namespace
#               with tmpfs on /run/systemd and /run/log: its sockets and a
#               volatile journal there; journald.conf.d drop-in: rate limit
#               off (RateLimitIntervalSec=0, RateLimitBurst=0), room for the
#               run (RuntimeMaxUse=8G, RuntimeMaxFileSize=1G), no kernel
#               log, no audit, no forwarding; the rest default (Compress
#               on). Datagrams go to /run/systemd/journal/dev-log.
#
# One measurement: start the peer, wait until it is ready and idle, run
# bench/ingest/loadgen (blocking senders) into its socket, then:
#   rate: count / time from the first send until the ceiling received the
#     last datagram, collectord's ring published it (loadgen -ring), or a
#     peer was last busy before staying idle for QUIET (loadgen -settle:
#     its threads' run time from /proc, sampled every 5 ms);
#   CPU per datagram: the peer's user+system time from /proc/PID/stat
#     around loadgen (the ceiling's own getrusage);
#   lost: count minus the distinct "s=ID n=SEQ" marks in its store (busybox
#     logread, the rsyslog file, journalctl -o cat on the private journal;
#     for collectord bench/ingest/verify, which also checks order and
#     credentials).
# The tables give medians over the repetitions; a ratio is the median of
# the per-repetition ratios to the ceiling measured in the same
# repetition. Nothing is pinned or niced. Run it from anywhere inside the
# checkout; it needs go.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"

JOURNALD=
for f in /lib/systemd/systemd-journald /usr/lib/systemd/systemd-journald; do
	[[ -x $f ]] && JOURNALD=$f && break
done

# ---------------------------------------------------------------------------
# Inner mode: one measurement, inside unshare -n -m -i.
#   run.sh --one PEER BIN DIR QLEN SENDERS SIZE COUNT RING_SIZE QUIET
# Prints: peer qlen senders size count rate cpu_us distinct duplicates
# ---------------------------------------------------------------------------
one() {
	local peer=$1 bin=$2 qlen=$4 senders=$5 size=$6 count=$7 ring_size=$8 quiet=$9
	dir=$3 TOTAL=$((senders * count))
	inner_init
	ip link set lo up
	echo "$qlen" >/proc/sys/net/unix/max_dgram_qlen
	mount --make-rprivate /
	LOADGEN=("$bin/loadgen" -senders "$senders" -size "$size" -count "$count" -timeout 120s)

	local rate cpu distinct dups=0
	case $peer in
	ceiling)
		"$bin/ceiling" -socket "$dir/k.sock" -expect "$TOTAL" -ready "$dir/k.ready" -timeout 60s >"$dir/ceiling.json" &
		DPID=$!
		PIDS+=("$DPID")
		wait_for 10 "$DPID" test -e "$dir/k.ready" || die "ceiling did not start"
		step "${LOADGEN[@]}" -socket "$dir/k.sock" >"$dir/lg.json" </dev/null || die "loadgen failed"
		wait "$DPID" || die "ceiling failed"
		rate=$(awk -v n="$TOTAL" -v a="$(jget start_unix_nano "$dir/lg.json")" -v b="$(jget last_unix_nano "$dir/ceiling.json")" \
			'BEGIN { printf "%.0f", n / ((b - a) / 1e9) }')
		cpu=$(awk -v c="$(jget cpu "$dir/ceiling.json")" -v n="$TOTAL" 'BEGIN { printf "%.3f", c * 1e6 / n }')
		distinct=$(jget received "$dir/ceiling.json")
		;;
	collectord)
		start_collectord "$dir/cd.log" "$bin/collectord" --socket "$dir/c.sock" --ring "$dir/ring" \
			--ring-size "$ring_size" --query-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0
		measure "$dir/c.sock" -ring "$dir/ring"
		step "$bin/verify" -ring "$dir/ring" -senders "$senders" -count "$count" -pid "$(jget pid "$dir/lg.json")" \
			>"$dir/verify.json" </dev/null || true
		[[ -s $dir/verify.json ]] || die "verify printed nothing"
		distinct=$((TOTAL - $(jget missing "$dir/verify.json")))
		dups=$(($(jget duplicates "$dir/verify.json") + $(jget out_of_order "$dir/verify.json")))
		;;
	busybox)
		# busybox syslogd binds /dev/log, no other path, and unlinks what
		# is there first: give it a /dev of its own (a tmpfs with null and
		# the host's /dev/shm, where the work directory may be).
		exec 3</dev/shm
		mount -t tmpfs -o size=1m,mode=755 none /dev
		mknod -m 666 /dev/null c 1 3
		mkdir /dev/shm
		mount --no-canonicalize --bind /proc/self/fd/3 /dev/shm
		exec 3<&-
		start_peer "$dir/busybox.log" /dev/log busybox syslogd -n -C$((${ring_size%MiB} << 10))
		# The socket comes before the ring: ready when logread can read it.
		wait_for 60 "$DPID" busybox logread >/dev/null || die "busybox syslogd: no ring"
		measure /dev/log -settle "$DPID" -quiet "$quiet"
		busybox logread >"$dir/store"
		;;
	rsyslog)
		mkdir "$dir/rs-work"
		cat >"$dir/rsyslog.conf" <<-EOF
			global(workDirectory="$dir/rs-work")
			module(load="imuxsock" SysSock.Use="off")
			input(type="imuxsock" Socket="$dir/rs.sock" RateLimit.Interval="0")
			*.* action(type="omfile" file="$dir/messages")
		EOF
		start_peer "$dir/rsyslog.log" "$dir/rs.sock" rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslog.pid"
		measure "$dir/rs.sock" -settle "$DPID" -quiet "$quiet"
		cp "$dir/messages" "$dir/store"
		;;
	journald)
		mount -t tmpfs -o size=64m none /run/systemd
		mount -t tmpfs -o size=10g none /run/log
		mkdir -p /run/systemd/journal /run/systemd/journald.conf.d
		cat >/run/systemd/journald.conf.d/bench.conf <<-EOF
			[Journal]
			Storage=volatile
			RateLimitIntervalSec=0
			RateLimitBurst=0
			RuntimeMaxUse=8G
			RuntimeMaxFileSize=1G
			ReadKMsg=no
			Audit=no
			ForwardToSyslog=no
			ForwardToKMsg=no
			ForwardToConsole=no
			ForwardToWall=no
		EOF
		start_peer "$dir/journald.log" /run/systemd/journal/dev-log "$JOURNALD"
		measure /run/systemd/journal/dev-log -settle "$DPID" -quiet "$quiet"
		journalctl -D /run/log/journal -o cat >"$dir/store"
		;;
	*) die "unknown peer $peer" ;;
	esac
	if [[ $peer == busybox || $peer == rsyslog || $peer == journald ]]; then
		# No process substitution: busybox's private /dev has no /dev/fd.
		distinct=$(count_marks "$dir/store")
		dups=${distinct#* } distinct=${distinct% *}
	fi
	if [[ $peer != ceiling ]]; then
		rate=$(awk -v r="$(jget stored_rate "$dir/lg.json")" 'BEGIN { printf "%.0f", r }')
		cpu=$(awk -v a="$CPU0" -v b="$CPU1" -v hz="$(getconf CLK_TCK)" -v n="$TOTAL" \
			'BEGIN { printf "%.3f", (b - a) / hz * 1e6 / n }')
		kill -TERM "$DPID"
		wait_for_exit "$DPID" || die "$peer did not stop on SIGTERM"
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$peer" "$qlen" "$senders" "$size" "$count" "$rate" "$cpu" "$distinct" "$dups"
}

# start_peer LOG SOCKET CMD...: run CMD (a daemon that stays in the
# foreground) with its output to LOG, set DPID, and wait until SOCKET
# exists and the daemon has been idle for a moment.
start_peer() {
	local log=$1 sock=$2
	shift 2
	"$@" >"$log" 2>&1 &
	DPID=$!
	PIDS+=("$DPID")
	wait_for 60 "$DPID" test -S "$sock" || die "$1 did not create $sock: $(tail -5 "$log")"
	wait_idle "$DPID"
}

# wait_idle PID: until PID's CPU time has not grown for 0.3 s (up to 60 s).
wait_idle() {
	local prev=-1 cur i
	for ((i = 0; i < 200; i++)); do
		cur=$(proc_cpu "$1")
		[[ $cur == "$prev" ]] && return 0
		prev=$cur
		sleep 0.3
	done
	die "process $1 never idle"
}

# measure SOCKET [LOADGEN FLAGS...]: loadgen into SOCKET, with DPID's CPU
# ticks before (CPU0) and after (CPU1); loadgen's result in DIR/lg.json.
measure() {
	local sock=$1
	shift
	CPU0=$(proc_cpu "$DPID")
	step "${LOADGEN[@]}" -socket "$sock" "$@" >"$dir/lg.json" </dev/null || die "loadgen failed"
	CPU1=$(proc_cpu "$DPID")
}

# count_marks FILE prints how many distinct loadgen marks ("s=ID n=SEQ"
# with ID < senders and SEQ < count) FILE holds, and how many repeats.
count_marks() {
	awk -v senders="$senders" -v count="$count" '
	match($0, /s=[0-9]+ n=[0-9]+/) {
		split(substr($0, RSTART, RLENGTH), f, /[= ]/)
		if (f[2] + 0 >= senders || f[4] + 0 >= count) next
		k = (f[2] + 0) " " (f[4] + 0)
		if (k in seen) dup++
		else { seen[k] = 1; n++ }
	}
	END { print n + 0, dup + 0 }' "$1"
}

if [[ ${1:-} == --one ]]; then
	shift
	one "$@"
	exit 0
fi

# ---------------------------------------------------------------------------
# Outer mode.
# ---------------------------------------------------------------------------
REPEAT=${REPEAT:-3}
QLENS=${QLENS:-512}
PEERS=${PEERS:-"ceiling collectord busybox rsyslog journald"}
QUIET=${QUIET:-1s}
CONFIGS=${CONFIGS:-$INGEST_CONFIGS}
while getopts "r:q:h" opt; do
	case $opt in
	r) REPEAT=$OPTARG ;;
	q) QLENS=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
[[ $REPEAT =~ ^[1-9][0-9]*$ && $REPEAT -le 100 ]] || die "REPEAT $REPEAT: want 1..100"
[[ " $PEERS " == *" ceiling "* ]] || die "PEERS must include ceiling: the ratios are to it"
if [[ $(id -u) != 0 ]] || ! unshare -n -m -i true 2>/dev/null; then
	die "needs root and unshare -n -m -i"
fi

# What the peers need, from Debian.
need=()
command -v busybox >/dev/null || need+=(busybox)
command -v rsyslogd >/dev/null || need+=(rsyslog)
if [[ -z $JOURNALD ]] || ! command -v journalctl >/dev/null; then need+=(systemd); fi
if ((${#need[@]})); then
	echo "installing ${need[*]} ..." >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
	for f in /lib/systemd/systemd-journald /usr/lib/systemd/systemd-journald; do
		[[ -x $f ]] && JOURNALD=$f && break
	done
fi
export JOURNALD

bench_init collectord-peers
echo "building into $WORK/bin ..." >&2
mkdir -p "$WORK/bin"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/bin/" ./cmd/collectord ./bench/ingest/loadgen \
	./bench/ingest/ceiling ./bench/ingest/verify)

RESULTS=$WORK/results.tsv
: >"$RESULTS"
t0=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
read -ra peers <<<"$PEERS"
for ((rep = 1; rep <= REPEAT; rep++)); do
	for qlen in $QLENS; do
		while read -r senders size count; do
			[[ -n $senders ]] || continue
			ring=$(ring_for $((senders * count)) "$size")
			# Taking turns: each repetition starts one peer further on.
			for ((i = 0; i < ${#peers[@]}; i++)); do
				peer=${peers[$(((i + rep - 1) % ${#peers[@]}))]}
				dir=$(mktemp -d "$WORK/run.XXXXXX")
				if ! step unshare -n -m -i -- bash "$SELF" --one "$peer" "$WORK/bin" "$dir" "$qlen" "$senders" \
					"$size" "$count" "$ring" "$QUIET" >"$dir/line" </dev/null; then
					show_tails "$dir"
					die "measurement failed ($peer, qlen $qlen, $senders x $size B)"
				fi
				cat "$dir/line" >>"$RESULTS"
				printf 'rep %d/%d qlen %s %s x %s B %s: %s\n' "$rep" "$REPEAT" "$qlen" "$senders" "$size" "$peer" \
					"$(awk -F'\t' '{ printf "%d/s, %.2f µs/msg, %d of %d stored", $6, $7, $8, $3 * $5 }' "$dir/line")" >&2
				rm -rf "$dir"
			done
		done <<<"$CONFIGS"
	done
done

versions="busybox $(busybox 2>&1 | sed -n '1s/^BusyBox \(v[^ ]*\).*/\1/p'), rsyslog $(rsyslogd -v | sed -n '1s/^rsyslogd *\([^ ]*\).*/\1/p'), systemd-journald $(journalctl --version | sed -n '1s/^systemd \([^ ]*\).*/\1/p')"
echo
echo "collectord $(revision), $versions; $(nproc) CPUs, $(uname -r), rfc3164, $REPEAT repetitions, nothing pinned or niced, $((SECONDS - t0)) s, load average $load0 before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo
# One table per figure: a row per receiver, a column per qlen and load.
# Rates are medians; ratios (in parentheses) the median of the ratios to
# the ceiling of the same repetition, qlen and load.
awk -F'\t' -v peers="$PEERS" "$AWK_STATS"'
BEGIN {
	np = split(peers, pl, " ")
	name["ceiling"] = "ceiling (bare recvmmsg)"; name["collectord"] = "collectord"
	name["busybox"] = "busybox syslogd -C"; name["rsyslog"] = "rsyslog (imuxsock → file)"; name["journald"] = "systemd-journald"
}
{
	c = $2 ": " $4 " B ×" $3
	if (!(c in cs)) { cs[c] = 1; co[++nc] = c }
	k = $1 SUBSEP c
	rate[k] = rate[k] " " $6; cpu[k] = cpu[k] " " $7
	lost[$1] += $3 * $5 - $8; dup[$1] += $9; runs[$1]++; sent[$1] += $3 * $5
	if ($1 == "ceiling") base[c, ++nb[c]] = $6
	else val[k, ++nv[k]] = $6
}
function head(title,   j) {
	printf "| %s |", title; for (j = 1; j <= nc; j++) printf " %s |", co[j]; printf "\n|---|"
	for (j = 1; j <= nc; j++) printf "---:|"; printf "\n"
}
END {
	head("msgs/s (ratio to the ceiling); qlen: load")
	for (i = 1; i <= np; i++) {
		p = pl[i]; printf "| %s |", name[p]
		for (j = 1; j <= nc; j++) {
			k = p SUBSEP co[j]
			if (p == "ceiling") { printf " %.0fk |", median(rate[k]) / 1000; continue }
			r = ""; for (m = 1; m <= nv[k]; m++) r = r " " val[k, m] / base[co[j], m]
			printf " %.0fk (%.2f) |", median(rate[k]) / 1000, median(r)
		}
		printf "\n"
	}
	printf "\n"
	head("CPU µs per message; qlen: load")
	for (i = 1; i <= np; i++) {
		p = pl[i]; printf "| %s |", name[p]
		for (j = 1; j <= nc; j++) printf " %.2f |", median(cpu[p SUBSEP co[j]])
		printf "\n"
	}
	printf "\n| receiver | runs | datagrams sent | lost | stored twice or out of order |\n|---|---:|---:|---:|---:|\n"
	for (i = 1; i <= np; i++) {
		p = pl[i]
		printf "| %s | %d | %d | %d | %d |\n", name[p], runs[p], sent[p], lost[p], dup[p]
	}
}' "$RESULTS"
echo
echo "Raw results (peer qlen senders size count rate cpu_us distinct duplicates):" >&2
cat "$RESULTS" >&2
