# shellcheck shell=bash
# What the benchmark scripts under bench/ share. Each sources it right after
# `set -euo pipefail`:
#
#   . "$(dirname "$(realpath "$0")")/../lib.sh"
#
# Sourcing sets SELF (this script, resolved), HERE (its folder), PROG (the
# name die puts first: run.sh), CHILD, PIDS and KEEP_WORK (below), and
# defines functions; it starts nothing, so a script's inner mode (the
# script running itself for one measurement) may source it too.
#
# The state the clean-up acts on:
#   WORK       the work directory (bench_init), removed on exit unless
#              KEEP_WORK=1;
#   CHILD      the pid of the step running now (step), stopped on exit;
#   PIDS       more pids to stop on exit: daemons (start_collectord adds
#              its own) and anything else a script starts in the background;
#   cleanup_hook, a function a script may define: run on exit after the
#              processes are stopped and before WORK is removed.

SELF=$(realpath "$0")
HERE=$(dirname "$SELF")
PROG=run.sh
CHILD=
PIDS=()
KEEP_WORK=0

# die MSG...: print "PROG: MSG" on stderr and exit 1.
die() {
	echo "$PROG: $*" >&2
	exit 1
}

# bench_init PREFIX: the outer mode's set-up. Sets ROOT (the checkout: the
# top of the git work tree this script is in, else two folders above it)
# and WORK, a fresh directory named PREFIX.XXXXXX in BENCH_TMPDIR, else in
# /dev/shm when writable (a tmpfs, like /run where the daemon keeps its
# ring), else in TMPDIR (/tmp). On exit, however it comes, cleanup runs;
# SIGINT and SIGTERM exit 130.
bench_init() {
	if ! ROOT=$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null); then
		ROOT=$(realpath "$HERE/../..")
	fi
	local base=${BENCH_TMPDIR:-}
	if [[ -z $base ]]; then
		base=${TMPDIR:-/tmp}
		[[ -d /dev/shm && -w /dev/shm ]] && base=/dev/shm
	fi
	WORK=$(mktemp -d "$base/$1.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

# cleanup: stop CHILD and PIDS with SIGTERM (stop_all), run cleanup_hook if
# the script defines one, remove WORK unless KEEP_WORK=1.
cleanup() {
	stop_all TERM
	if declare -F cleanup_hook >/dev/null; then
		cleanup_hook
	fi
	if [[ -n ${WORK:-} && $KEEP_WORK != 1 ]]; then
		rm -rf "$WORK"
	fi
}

# inner_init: the inner mode's set-up. On exit, SIGKILL whatever the
# measurement started and still runs (stop_all KILL: it is being cut short,
# or it is done and nothing should be left); SIGTERM exits 130.
inner_init() {
	CHILD=
	PIDS=()
	trap 'stop_all KILL' EXIT
	trap 'exit 130' INT TERM
}

# stop_all SIGNAL: send SIGNAL to CHILD, then to each pid in PIDS, waiting
# for each in turn; a pid that has exited already is no error.
stop_all() {
	local p
	if [[ -n $CHILD ]]; then
		kill -"$1" "$CHILD" 2>/dev/null || true
		wait "$CHILD" 2>/dev/null || true
	fi
	for p in "${PIDS[@]}"; do
		kill -"$1" "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}

# step CMD...: run CMD in the background with CHILD set to its pid, wait
# for it and return its status. Bash acts on a trapped signal only between
# commands, so a foreground CMD would delay SIGINT or SIGTERM until it
# ended; waiting lets the trap run at once and the clean-up stop CMD.
# Redirections on the call apply to CMD.
step() {
	local status=0
	"$@" &
	CHILD=$!
	wait "$CHILD" || status=$?
	CHILD=
	return "$status"
}

# run CMD...: step CMD at niceness NICE.
run() { step nice -n "$NICE" "$@"; }

# netns_ok succeeds when this script may run commands in a private network
# namespace (unshare -n), with its own net.unix.max_dgram_qlen: as root,
# where unshare works.
netns_ok() {
	[[ $(id -u) == 0 ]] && unshare -n true 2>/dev/null
}

# pin_cpus: unless PIN=0, there is one CPU only or taskset is missing,
# export RECV_CPU (the last CPU, for the process that receives: ceiling or
# collectord) and SEND_CPUS (the others, for the senders) and succeed;
# otherwise unset both and fail. The inner mode reads them (pin_prefixes).
pin_cpus() {
	local ncpu
	ncpu=$(nproc)
	if [[ ${PIN:-1} != 0 && $ncpu -ge 2 ]] && command -v taskset >/dev/null; then
		export RECV_CPU=$((ncpu - 1)) SEND_CPUS=0
		if ((ncpu > 2)); then
			SEND_CPUS=0-$((ncpu - 2))
		fi
		return 0
	fi
	unset RECV_CPU SEND_CPUS
	return 1
}

# pin_prefixes sets the arrays RPIN and SPIN to the taskset commands that
# put the receiver on RECV_CPU and the senders on SEND_CPUS, or to nothing
# when those are not set (pin_cpus).
# shellcheck disable=SC2034 # RPIN and SPIN are for the caller
pin_prefixes() {
	RPIN=() SPIN=()
	if [[ -n ${RECV_CPU:-} ]]; then
		RPIN=(taskset -c "$RECV_CPU")
		SPIN=(taskset -c "$SEND_CPUS")
	fi
}

# revision prints the checkout's short HEAD ("?" outside git), with
# "+uncommitted" when the work tree has changes.
revision() {
	local rev dirty=
	rev=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')
	(cd "$ROOT" && [[ -z $(git status --porcelain 2>/dev/null) ]]) || dirty=+uncommitted
	echo "$rev$dirty"
}

# AWK_STATS: awk functions to put before an awk program, as in
# awk "$AWK_STATS"'{ ... }': median(s), the median of the numbers in the
# space-separated list s, and range(s, d), their "lowest-highest" with d
# decimals.
# shellcheck disable=SC2034 # for the caller
AWK_STATS='
function median(s,   a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function range(s, d,   a, n, i, lo, hi) {
	n = split(s, a, " "); lo = hi = a[1] + 0
	for (i = 2; i <= n; i++) { if (a[i] + 0 < lo) lo = a[i] + 0; if (a[i] + 0 > hi) hi = a[i] + 0 }
	return sprintf("%." d "f-%." d "f", lo, hi)
}
'

# jget KEY [FILE]: the value of the first "KEY": in FILE (or stdin) as
# text: a number, true, false or null as written, a string without its
# quotes (our programs write no escapes in the strings read this way).
# Nothing, and status 0, when KEY is missing. Meant for the flat one-line
# JSON objects our programs print; for one line of a file of several, pipe
# that line in.
jget() {
	awk -v k="\"$1\":" '
	i = index($0, k) {
		v = substr($0, i + length(k))
		sub(/^[ \t]+/, "", v)
		if (v ~ /^"/) {
			v = substr(v, 2)
			sub(/".*/, "", v)
		} else {
			sub(/[ \t]*[],}].*/, "", v)
		}
		print v
		exit
	}' "${2:--}"
}

# jlist KEY FILE: a top-level array of numbers, comma-separated, without
# the brackets.
jlist() { grep -o "\"$1\":\[[^]]*\]" "$2" | cut -d: -f2 | tr -d '[]'; }

# proc_cpu PID: the process's user+system CPU time in clock ticks (the
# command name, field 2 of /proc/PID/stat, has no spaces for our binaries).
proc_cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# wait_for SECONDS PID CMD...: run CMD every 20 ms until it succeeds
# (status 0), PID has exited (1) or SECONDS have passed (2).
wait_for() {
	local n=$(($1 * 50)) pid=$2 i
	shift 2
	for ((i = 0; i < n; i++)); do
		"$@" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.02
	done
	return 2
}

# wait_for_exit PID: up to 30 s for PID to exit (status 1 if it does not).
wait_for_exit() {
	local i
	for ((i = 0; i < 1500; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.02
	done
	return 1
}

# INGEST_CONFIGS: the loads of the ingest benchmarks (bench/ingest,
# bench/peers), one "SENDERS SIZE COUNT" a line, COUNT datagrams per
# sender: 400,000 datagrams each of 1 x 100 B, 4 x 100 B, 1 x 1000 B and
# 4 x 1000 B.
# shellcheck disable=SC2034 # for the caller
INGEST_CONFIGS="1 100 400000
4 100 100000
1 1000 400000
4 1000 100000"

# ring_for TOTAL SIZE prints a collectord ring size (as "128MiB") that
# holds TOTAL records of SIZE-byte datagrams with a fifth to spare: the
# smallest power of two of at least 64 MiB, the default (a record takes at
# most SIZE + 64 bytes).
ring_for() {
	local need=$(($1 * ($2 + 64) * 6 / 5)) mib=64
	while (((mib << 20) < need)); do mib=$((mib * 2)); done
	echo "${mib}MiB"
}

# start_collectord LOG CMD...: run CMD, a collectord command line, in the
# background with stderr to LOG, and wait up to 30 s for the daemon's
# "collectord ready" line; die if it exits first or does not get there.
# Sets DPID to its pid, adds that to PIDS, and sets ADDR to the query
# address it logged ("" when it has no query listener). CMD may start with
# nice or taskset, which exec it: the pid must be the daemon's.
start_collectord() {
	local log=$1 status=0
	shift
	"$@" 2>"$log" &
	DPID=$!
	PIDS+=("$DPID")
	# The whole line, so that one caught half written is not taken.
	wait_for 30 "$DPID" grep -q '"msg":"collectord ready".*}$' "$log" || status=$?
	case $status in
	1) die "collectord exited: $(cat "$log")" ;;
	2) die "collectord not ready after 30s: $(cat "$log")" ;;
	esac
	# shellcheck disable=SC2034 # for the caller
	ADDR=$(sed -n 's/.*"msg":"collectord ready".*"query_addr":"\([^"]*\)".*/\1/p' "$log")
}

# show_tails DIR: on stderr, the last 5 lines of each *.json and *.log file
# in DIR, each after a "--- NAME" line: what a failed measurement left.
show_tails() {
	local f
	for f in "$1"/*.json "$1"/*.log; do
		[[ -e $f ]] && { echo "--- ${f##*/}"; tail -5 "$f"; } >&2
	done
	return 0
}

# build_gohello BIN: an empty Go program as BIN/gohello, built as the
# project's binaries are (CGO_ENABLED=0), for scale: what any Go binary
# costs to start on this host.
build_gohello() {
	mkdir -p "$WORK/gohello"
	printf 'module gohello\n\ngo 1.26\n' >"$WORK/gohello/go.mod"
	printf 'package main\n\nfunc main() {}\n' >"$WORK/gohello/main.go"
	(cd "$WORK/gohello" && CGO_ENABLED=0 GOFLAGS="" go build -o "$1/gohello" .)
}
