#!/usr/bin/env bash
# Memory and CPU of `ironban server` (and fail2ban-server when installed) with 20 jails after
# LINES appended log lines (default 100k), plus ban latency: the time from writing the
# maxretry-th failure line to the recording action running (inotify backend). CPU is read
# once the server's CPU time has (nearly) stopped growing for 3 s (all appended lines processed).
# Usage: bench/daemon20.sh [ironban] [fail2ban]
#   IRONBAN=path   run that ironban binary instead of the release build (A/B comparisons)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
LINES="${LINES:-100000}"
SERVERS="${*:-ironban fail2ban}"
CONF="${CONF:-$repo/../shared/fail2ban-upstream/config}"
export TZ=UTC
. "$here/tree.sh"
filters=(sshd postfix kerio dovecot exim sendmail-reject sendmail-auth courier-smtp courier-auth
         cyrus-imap uwimap-auth qmail pam-generic vsftpd proftpd pure-ftpd apache-auth nginx-http-auth
         dropbear xinetd-fail)
(cd "$here/loggen" && cargo build --release -q) || exit 1
loggen="$here/loggen/target/release/loggen"
(cd "$repo" && cargo build --release -q) || exit 1

run_one() {
    local server="$1" tree="$here/out/daemon20-$1"
    bench_tree "$tree" "$CONF"
    cat > "$tree/action.d/stamp.conf" <<'EOC'
[Definition]
actionban = echo "<ip> $(date +%%s.%%N)" >> <file>
EOC
    {
        printf '[DEFAULT]\nbackend = auto\nmaxretry = 3\nfindtime = 10m\nbantime = 1h\nusedns = no\nignoreself = false\n'
        printf 'action = stamp[file="%s/bans.txt"]\n\n' "$tree"
        for f in "${filters[@]}"; do
            printf '[%s]\nenabled = true\nbackend = auto\nfilter = %s\nlogpath = %s/logs/%s.log\n\n' "$f" "$f" "$tree" "$f"
            : > "$tree/logs/$f.log"
        done
    } > "$tree/jail.local"
    local pid
    case "$server" in
        ironban) "${IRONBAN:-$repo/target/release/ironban}" -c "$tree" server -f >"$tree/run/out" 2>&1 & pid=$! ;;
        fail2ban)
            command -v fail2ban-server >/dev/null || { echo "fail2ban: not installed"; return; }
            fail2ban-server -f -c "$tree" -s "$tree/run/s.sock" -p "$tree/run/p.pid" >"$tree/run/out" 2>&1 & pid=$! ;;
    esac
    sleep 2
    [ "$server" = fail2ban ] && fail2ban-client -c "$tree" -s "$tree/run/s.sock" reload >/dev/null 2>&1
    sleep 1
    local idle; idle=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
    local t0; t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    # 100k lines spread over the 20 logs: sshd and postfix formats from the generator.
    local per=$((LINES / 20))
    "$loggen" sshd "$per" --seed 7 --at "$(date +%s)" > "$tree/sshd.src" 2>/dev/null
    "$loggen" postfix "$per" --seed 8 --at "$(date +%s)" > "$tree/postfix.src" 2>/dev/null
    for f in "${filters[@]}"; do
        case "$f" in postfix*|sendmail*|courier*|qmail|exim) src=postfix.src ;; *) src=sshd.src ;; esac
        cat "$tree/$src" >> "$tree/logs/$f.log"
    done
    # Wait until the server is done: its CPU time grows by at most 2 ticks a second for 3 s
    # (fail2ban's idle threads tick now and then; at most 600 s).
    local t1 prev=-1000 still=0 waited=0
    while [ "$still" -lt 3 ] && [ "$waited" -lt 600 ]; do
        sleep 1; waited=$((waited + 1))
        t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
        if [ $((t1 - prev)) -le 2 ]; then still=$((still + 1)); else still=0; fi
        prev=$t1
    done
    local rss; rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
    local hz; hz=$(getconf CLK_TCK)
    # Latency probes on the sshd jail: write 3 failures from a fresh address, time the ban.
    local lat=()
    for i in $(seq 1 9); do
        local ip="203.0.113.$((100 + i))"
        local t; t=$(date +%s.%N)
        for k in 1 2 3; do
            echo "$(date '+%b %e %H:%M:%S') srv sshd[$((4000+i))]: Failed password for root from $ip port 22 ssh2" >> "$tree/logs/sshd.log"
        done
        local until=$(( $(date +%s) + 10 ))
        while ! grep -q "^$ip " "$tree/bans.txt" 2>/dev/null && [ "$(date +%s)" -lt "$until" ]; do sleep 0.005; done
        local b; b=$(grep "^$ip " "$tree/bans.txt" | head -1 | awk '{print $2}')
        [ -n "$b" ] && lat+=("$(echo "($b - $t) * 1000" | bc)")
        sleep 0.3
    done
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    local p50; p50=$(printf '%s\n' "${lat[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '%s: 20 jails, %d lines: idle RSS %d KB, RSS after %d KB, CPU %.2f s, ban latency p50 %.1f ms (%d probes)\n' \
        "$server" "$LINES" "$idle" "$rss" "$(echo "($t1 - $t0) / $hz" | bc -l)" "${p50:-0}" "${#lat[@]}"
}
for s in $SERVERS; do run_one "$s"; done
