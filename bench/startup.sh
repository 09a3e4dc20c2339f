#!/usr/bin/env bash
# Start-up time of `ironban server` with JAILS (default 100) enabled jails, each on its own
# (empty) log, over the upstream filters in turn: wall time from exec until the control
# socket answers `ping`, RUNS times (default 5), median printed. Also prints the server's
# RSS once all jails run. IRONBAN=path runs that binary instead of the release build.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
JAILS="${JAILS:-100}"
RUNS="${RUNS:-5}"
CONF="${CONF:-$repo/../shared/fail2ban-upstream/config}"
(cd "$repo" && cargo build --release -q) || exit 1
ironban="${IRONBAN:-$repo/target/release/ironban}"
tree="$here/out/startup"
. "$here/tree.sh"
bench_tree "$tree" "$CONF"
mapfile -t filters < <(cd "$CONF/filter.d" && ls *.conf | sed 's/\.conf$//' | grep -v 'common$' | sort)
{
    printf '[DEFAULT]\nbackend = auto\nusedns = no\naction = \n\n'
    for ((i = 0; i < JAILS; i++)); do
        f="${filters[$((i % ${#filters[@]}))]}"
        printf '[j%03d]\nenabled = true\nfilter = %s\nlogpath = %s/logs/j%03d.log\n\n' "$i" "$f" "$tree" "$i"
        : > "$tree/logs/j$(printf %03d "$i").log"
    done
} > "$tree/jail.local"
now_ms() { date +%s%3N; }
times=()
for ((r = 1; r <= RUNS; r++)); do
    rm -f "$tree/run/s.sock" "$tree/run/db.sqlite3"*
    t0=$(now_ms)
    "$ironban" -c "$tree" server -f >"$tree/run/out" 2>&1 & pid=$!
    until "$ironban" -c "$tree" client --timeout 1 ping >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { echo "server exited:"; cat "$tree/run/out"; exit 1; }
        sleep 0.002
    done
    t1=$(now_ms)
    jails=$("$ironban" -c "$tree" client status | awk -F: '/Number of jail/{gsub(/ /,"",$2); print $2}')
    rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
    kill "$pid"; wait "$pid" 2>/dev/null
    times+=("$((t1 - t0))")
    echo "run $r: ${times[-1]} ms until ping answered, $jails jails, RSS $rss KB" >&2
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "ironban server: $JAILS jails, start-up median ${median} ms over $RUNS runs, RSS $rss KB"
