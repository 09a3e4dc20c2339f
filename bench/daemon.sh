#!/usr/bin/env bash
# Daemon benchmark: resident memory, CPU and ban latency of fail2ban-server and `ironban server`
# under the same live log load, with the same jails and filters.
#
# For each server: build a private config tree (upstream config + a jail.local enabling sshd,
# postfix, kerio and our OpenSMTPD filter on private log files, with a recording action instead
# of a firewall), start the server, append RATE lines/s of generated traffic (stamped "now") to
# the four logs for DURATION seconds, sample RSS and CPU of the server every second, and every
# PROBE_EVERY seconds write MAXRETRY failures for a fresh address and time until the recording
# action reports its ban.
#
# Usage: bench/daemon.sh [fail2ban] [ironban]        (default: both; results in bench/out/)
# Environment: DURATION=60 RATE=2000 (lines/s, split over the 4 logs) PROBE_EVERY=5 MAXRETRY=3
#              CONF=DIR (default ../shared/fail2ban-upstream/config, else /etc/fail2ban)
#
# Status: the fail2ban side works. The ironban side starts `ironban -c TREE server` in the
# foreground and reads the same recording action output; it reports n/a until the server is
# implemented (the script does not guess at its command line beyond that).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
out="$here/out"
DURATION="${DURATION:-60}"
RATE="${RATE:-2000}"
PROBE_EVERY="${PROBE_EVERY:-5}"
MAXRETRY="${MAXRETRY:-3}"
SERVERS="${*:-fail2ban ironban}"
export TZ=UTC # loggen stamps UTC; syslog dates carry no zone, so both servers must read UTC
mkdir -p "$out"

if [ -z "${CONF:-}" ]; then
    if [ -d "$repo/../shared/fail2ban-upstream/config/filter.d" ]; then
        CONF="$(cd "$repo/../shared/fail2ban-upstream/config" && pwd)"
    else
        CONF=/etc/fail2ban
    fi
fi

say() { printf '%s\n' "$*" >&2; }

(cd "$here/loggen" && cargo build --release --quiet) || { say "loggen build failed"; exit 1; }
loggen="$here/loggen/target/release/loggen"

# make_tree DIR BACKEND: private config tree with four jails and the recording action.
make_tree() {
    local tree="$1" backend="$2"
    rm -rf "$tree"
    mkdir -p "$tree/logs" "$tree/run"
    cp -r "$CONF/." "$tree/"
    rm -f "$tree"/jail.d/* "$tree"/*.local 2>/dev/null
    cp "$here/filter.d/opensmtpd.conf" "$tree/filter.d/opensmtpd.conf"
    : >"$tree/bans.txt"
    for f in auth.log mail.log security.log maillog; do : >"$tree/logs/$f"; done
    cat >"$tree/action.d/bench-record.conf" <<'EOF'
# Benchmark action: append "<jail> <ip> <epoch.ns>" to a file instead of touching a firewall.
[Definition]
actionstart =
actionstop =
actioncheck =
actionban = printf '%%s %%s %%s\n' '<name>' '<ip>' "$(date +%%s.%%N)" >> '<logfile>'
actionunban =

[Init]
logfile = /dev/null
EOF
    cat >"$tree/fail2ban.local" <<EOF
[Definition]
loglevel = INFO
logtarget = $tree/run/server.log
socket = $tree/run/server.sock
pidfile = $tree/run/server.pid
dbfile = $tree/run/db.sqlite3
EOF
    cat >"$tree/jail.local" <<EOF
[DEFAULT]
backend = $backend
maxretry = $MAXRETRY
findtime = 10m
bantime = 1h
usedns = no
action = bench-record[logfile="$tree/bans.txt"]

[sshd]
enabled = true
backend = $backend
logpath = $tree/logs/auth.log

[postfix]
enabled = true
backend = $backend
logpath = $tree/logs/mail.log

[kerio]
enabled = true
backend = $backend
logpath = $tree/logs/security.log

[opensmtpd]
enabled = true
backend = $backend
filter = opensmtpd
logpath = $tree/logs/maillog
EOF
}

# Load generator: every second append RATE/4 lines per log, stamped with the current second.
feed_load() {
    local tree="$1" per=$((RATE / 4)) i=0
    while :; do
        now=$(date +%s)
        "$loggen" sshd "$per" --seed "$i" --at "$now" >>"$tree/logs/auth.log" 2>/dev/null
        "$loggen" postfix "$per" --seed "$i" --at "$now" >>"$tree/logs/mail.log" 2>/dev/null
        "$loggen" kerio "$per" --seed "$i" --at "$now" >>"$tree/logs/security.log" 2>/dev/null
        "$loggen" opensmtpd "$per" --seed "$i" --at "$now" >>"$tree/logs/maillog" 2>/dev/null
        i=$((i + 1))
        sleep 1
    done
}

# Samples "epoch rss_kb cpu_ticks" of PID every second into FILE.
sample_proc() {
    local pid="$1" file="$2"
    while [ -r "/proc/$pid/stat" ]; do
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
        # utime + stime are fields 14 and 15 (the command name in field 2 has no spaces here).
        ticks=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null)
        printf '%s %s %s\n' "$(date +%s.%N)" "${rss:-0}" "${ticks:-0}" >>"$file"
        sleep 1
    done
}

# Probe N: MAXRETRY sshd failures from a fresh address in 198.18.0.0/15 (benchmark range);
# prints the latency in ms until the recording action logged that address, or "timeout".
probe() {
    local tree="$1" n="$2" ip start stamp k
    ip="198.18.$((n / 250)).$((n % 250 + 1))"
    start=$(date +%s.%N)
    stamp=$(date '+%b %e %H:%M:%S')
    for ((k = 0; k < MAXRETRY; k++)); do
        printf '%s gw sshd[%d]: Failed password for root from %s port %d ssh2\n' \
            "$stamp" $((7000 + n)) "$ip" $((40000 + k)) >>"$tree/logs/auth.log"
    done
    for ((k = 0; k < 200; k++)); do
        line=$(grep -m1 " $ip " "$tree/bans.txt")
        if [ -n "$line" ]; then
            awk -v s="$start" -v e="${line##* }" 'BEGIN { printf "%.0f\n", (e - s) * 1000 }'
            return
        fi
        sleep 0.05
    done
    echo timeout
}

start_server() {
    local name="$1" tree="$2"
    case "$name" in
        fail2ban)
            fail2ban-client -c "$tree" start >/dev/null 2>"$tree/run/start.err" || return 1
            for _ in $(seq 50); do [ -s "$tree/run/server.pid" ] && break; sleep 0.1; done
            cat "$tree/run/server.pid"
            ;;
        ironban)
            "$repo/target/release/ironban" -c "$tree" server >"$tree/run/server.out" 2>&1 &
            echo $!
            ;;
    esac
}

stop_server() {
    local name="$1" tree="$2" pid="$3"
    case "$name" in
        fail2ban) fail2ban-client -c "$tree" stop >/dev/null 2>&1 ;;
        ironban) kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null ;;
    esac
}

report="$out/daemon.txt"
: >"$report"
for name in $SERVERS; do
    tree="$out/daemon-$name"
    case "$name" in
        fail2ban)
            if ! command -v fail2ban-server >/dev/null; then
                say "== fail2ban-server missing (apt-get install fail2ban): skipped"
                echo "$name: n/a (fail2ban not installed)" >>"$report"
                continue
            fi
            make_tree "$tree" polling
            ;;
        ironban)
            (cd "$repo" && cargo build --release --quiet) || { echo "$name: n/a (build failed)" >>"$report"; continue; }
            make_tree "$tree" auto
            ;;
        *) say "unknown server $name"; continue ;;
    esac
    say "== $name: starting on $tree"
    pid=$(start_server "$name" "$tree")
    sleep 3
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
        say "== $name: server did not stay up; see $tree/run/"
        echo "$name: n/a (server did not start; see $tree/run/)" >>"$report"
        continue
    fi
    idle_rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    samples="$tree/run/samples.txt"
    : >"$samples"
    sample_proc "$pid" "$samples" &
    sampler=$!
    feed_load "$tree" &
    feeder=$!
    latencies="$tree/run/latencies.txt"
    : >"$latencies"
    end=$(($(date +%s) + DURATION))
    n=0
    while [ "$(date +%s)" -lt "$end" ]; do
        sleep "$PROBE_EVERY"
        probe "$tree" "$n" >>"$latencies"
        n=$((n + 1))
    done
    kill "$feeder" "$sampler" 2>/dev/null
    wait "$feeder" "$sampler" 2>/dev/null
    stop_server "$name" "$tree" "$pid"

    clk=$(getconf CLK_TCK)
    summary=$(awk -v clk="$clk" '
        NR == 1 { t0 = $1; c0 = $3 }
        { t1 = $1; c1 = $3; if ($2 > max) max = $2; sum += $2; n++ }
        END { if (n < 2) { print "n/a"; exit }
              printf "RSS avg %.0f KB max %.0f KB; CPU %.1f%% of one core", sum / n, max,
                     100 * (c1 - c0) / clk / (t1 - t0) }' "$samples")
    lat=$(grep -v timeout "$latencies" | sort -n | awk '
        { v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit }
          p95 = v[int((NR - 1) * 0.95) + 1]
          printf "ban latency median %d ms p95 %d ms max %d ms", v[int((NR + 1) / 2)], p95, v[NR] }')
    timeouts=$(grep -c timeout "$latencies")
    bans=$(wc -l <"$tree/bans.txt")
    echo "$name: idle RSS ${idle_rss} KB; $summary; $lat over $n probes ($timeouts timed out); $bans bans at $RATE lines/s for ${DURATION}s" >>"$report"
done
cat "$report"
