#!/usr/bin/env bash
# logctl's tracer: what linking the OpenTelemetry SDK into logctl would cost
# every start, against internal/litetrace, with tracing off (the common
# case). Prints a Markdown table.
#
#   bench/tracer/run.sh
#
# It builds from this checkout, with CGO_ENABLED=0 as bench/query does:
# collectord, bench/query/qbench, an empty Go program for scale, and logctl
# three ways:
#   litetrace  as it is;
#   sdk        go.opentelemetry.io/otel/sdk/trace with the small OTLP/HTTP
#              JSON exporter of bench/tracer/sdktracer.go (no otlptracehttp,
#              no protobuf);
#   sdk+otlp   the SDK with otlptracehttp, as the daemon has it
#              (bench/tracer/otlptracer.go);
# the last two from a copy of the checkout's tracked files in which tail.go
# calls that file's benchTracer instead of litetrace.Setup.
#
# Then collectord on a fresh ring with 1,000 records; `qbench time` runs
# `logctl tail -n 0 --ring RING` (start, map the ring, print nothing) RUNS
# times with each logctl and the empty program, taking turns, after 10
# unmeasured rounds; then INIT_RUNS rounds of the same command under
# GODEBUG=inittrace=1, taking turns, for the time spent initialising
# packages (the sum of inittrace's "clock" figures; the median round).
#
# Environment: RUNS (100), INIT_RUNS (21), NICE (0: as it runs),
# BENCH_TMPDIR (where the ring goes: /dev/shm when writable, else TMPDIR).
# No OTEL_* variable may be set: the figures are for tracing off.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"

RUNS=${RUNS:-100}
INIT_RUNS=${INIT_RUNS:-21}
NICE=${NICE:-0}
otel=$(env | grep '^OTEL_' || true)
[[ -z $otel ]] || die "unset the OTEL_* variables: this measures tracing off"

# It builds from a copy of the tracked files: a git checkout only.
git -C "$HERE" rev-parse --show-toplevel >/dev/null
bench_init tracerbench

BIN=$WORK/bin
mkdir -p "$BIN"
echo "building into $BIN ..." >&2
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$BIN/" ./cmd/collectord ./bench/query/qbench)
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$BIN/logctl-litetrace" ./cmd/logctl)
mkdir -p "$WORK/gohello"
printf 'module gohello\n\ngo 1.26\n' >"$WORK/gohello/go.mod"
printf 'package main\n\nfunc main() {}\n' >"$WORK/gohello/main.go"
(cd "$WORK/gohello" && GOFLAGS= CGO_ENABLED=0 go build -o "$BIN/gohello" .)

# build_variant NAME FILE: logctl with FILE's benchTracer in place of
# litetrace.Setup.
SRC=$WORK/src
mkdir -p "$SRC"
(cd "$ROOT" && git ls-files -z | xargs -0 cp --parents -t "$SRC")
sed -i -e 's/litetrace\.Setup("logctl")/benchTracer("logctl")/' -e '/"github.com\/collectord\/collectord\/internal\/litetrace"/d' "$SRC/cmd/logctl/tail.go"
grep -q 'benchTracer("logctl")' "$SRC/cmd/logctl/tail.go" || die 'cmd/logctl/tail.go no longer calls litetrace.Setup("logctl"): adapt this script'
build_variant() {
	sed '/^\/\/go:build ignore$/d' "$2" >"$SRC/cmd/logctl/benchtracer.go"
	(cd "$SRC" && CGO_ENABLED=0 go build -o "$BIN/logctl-$1" ./cmd/logctl)
}
build_variant sdk "$HERE/sdktracer.go"
build_variant sdk+otlp "$HERE/otlptracer.go"

echo "starting collectord ..." >&2
mkdir -p "$WORK/d"
RING=$WORK/d/ring
start_collectord "$WORK/d/log" nice -n "$NICE" "$BIN/collectord" --socket "$WORK/d/s" --ring "$RING" \
	--query-addr "" --query-socket "" --metrics-addr ""
"$BIN/qbench" fill -socket "$WORK/d/s" -ring "$RING" -n 1000 >/dev/null

VARIANTS=(litetrace sdk sdk+otlp)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "timing logctl tail -n 0 --ring ($RUNS runs each) ..." >&2
args=()
for v in "${VARIANTS[@]}"; do
	args+=("$BIN/logctl-$v" tail -n 0 --ring "$RING" :::)
done
nice -n "$NICE" "$BIN/qbench" time -runs "$RUNS" -- "${args[@]}" "$BIN/gohello" >"$WORK/time.json"

echo "GODEBUG=inittrace=1 ($INIT_RUNS rounds) ..." >&2
for ((r = 0; r < INIT_RUNS; r++)); do
	for v in "${VARIANTS[@]}"; do
		GODEBUG=inittrace=1 nice -n "$NICE" "$BIN/logctl-$v" tail -n 0 --ring "$RING" 2>&1 >/dev/null |
			awk -v v="$v" -v r="$r" '$1 == "init" { print v, r, $2, $5 }' >>"$WORK/init.txt"
	done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# timing KEY N: KEY of the Nth command's figures in time.json.
timing() { sed -n "${2}p" "$WORK/time.json" | jget "$1"; }
ms() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }
# init_median VARIANT: the median over rounds of the summed clock, in ms,
# and the number of packages with init work.
init_median() {
	awk -v v="$1" '$1 == v { t[$2] += $4; n[$2]++ } END { for (r in t) print t[r], n[r] }' "$WORK/init.txt" |
		sort -n | awk '{ a[NR] = $1; p = $2 } END { printf "%.2f ms | %d", a[int((NR + 1) / 2)], p }'
}
size() { awk -v b="$(stat -c %s "$BIN/$1")" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

base_p50=$(timing p50_us 1)
echo "| logctl build | binary | tail -n 0 --ring p50 | p90 | p50 / litetrace | package init (median) | packages with init work |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for i in "${!VARIANTS[@]}"; do
	v=${VARIANTS[$i]}
	p50=$(timing p50_us $((i + 1)))
	printf '| %s | %s | %s ms | %s ms | %s | %s |\n' "$v" "$(size "logctl-$v")" "$(ms "$p50")" "$(ms "$(timing p90_us $((i + 1)))")" \
		"$(awk -v a="$p50" -v b="$base_p50" 'BEGIN { printf "%.3f (%+.2f ms)", a / b, (a - b) / 1000 }')" "$(init_median "$v")"
done
n=$((${#VARIANTS[@]} + 1))
printf '| empty Go program, for scale | %s | %s ms | %s ms | | | |\n' "$(size gohello)" "$(ms "$(timing p50_us $n)")" "$(ms "$(timing p90_us $n)")"
echo
echo "$(nproc) CPUs, $(uname -r), $(go version | cut -d' ' -f3), nice $NICE, load average $load0 at the start and $load1 at the end; $RUNS runs of each, taking turns; inittrace: $INIT_RUNS rounds."
echo
echo "Packages only the sdk build initialises, median clock over the rounds:"
echo
awk '$1 == "litetrace" { print $3 }' "$WORK/init.txt" | sort -u >"$WORK/litepkgs.txt"
# package clock, sorted by package then clock: one median line a package.
awk '$1 == "sdk" { print $3, $4 }' "$WORK/init.txt" | sort -k1,1 -k2,2n |
	awk 'function out() { if (n) printf "%s %.3f\n", p, v[int((n + 1) / 2)] }
		$1 != p { out(); p = $1; n = 0 } { v[++n] = $2 } END { out() }' |
	awk 'FNR == NR { lite[$1] = 1; next } !($1 in lite)' "$WORK/litepkgs.txt" - |
	sort -k2,2nr | awk '{ printf "- %s %.3f ms\n", $1, $2; t += $2 } END { printf "- (total %.2f ms)\n", t }'
