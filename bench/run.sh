#!/usr/bin/env bash
# Throughput benchmark: ironban regex-check --json vs Debian's fail2ban-regex vs grep -c, on
# generated sshd / Postfix / Kerio / OpenSMTPD logs, with the same filter files for both tools.
#
# Usage: bench/run.sh            (from anywhere; results in bench/out/)
# Environment:
#   LINES=1000000      lines per generated log
#   RUNS=3             timed runs per tool and format (the median is reported)
#   FORMATS="sshd postfix kerio opensmtpd"
#   CONF=DIR           fail2ban config dir (default ../shared/fail2ban-upstream/config, else
#                      /etc/fail2ban); opensmtpd always uses bench/filter.d/opensmtpd.conf
#   SEED=42            generator seed
#   SKIP_FAIL2BAN=1    do not run fail2ban-regex (it needs ~20 s per million lines per run)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
out="$here/out"
LINES="${LINES:-1000000}"
RUNS="${RUNS:-3}"
FORMATS="${FORMATS:-sshd postfix kerio opensmtpd}"
SEED="${SEED:-42}"
mkdir -p "$out"

if [ -z "${CONF:-}" ]; then
    if [ -d "$repo/../shared/fail2ban-upstream/config/filter.d" ]; then
        CONF="$(cd "$repo/../shared/fail2ban-upstream/config" && pwd)"
    else
        CONF=/etc/fail2ban
    fi
fi

say() { printf '%s\n' "$*" >&2; }

# --- build --------------------------------------------------------------------------------
say "== building ironban (release) and loggen"
(cd "$repo" && cargo build --release --quiet) || { say "cargo build --release failed"; exit 1; }
(cd "$here/loggen" && cargo build --release --quiet) || { say "loggen build failed"; exit 1; }
ironban="$repo/target/release/ironban"
loggen="$here/loggen/target/release/loggen"

# --- fail2ban-regex -----------------------------------------------------------------------
have_fail2ban=0
if [ "${SKIP_FAIL2BAN:-0}" = 1 ]; then
    say "== fail2ban-regex skipped (SKIP_FAIL2BAN=1)"
elif command -v fail2ban-regex >/dev/null; then
    have_fail2ban=1
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "== fail2ban-regex missing: installing Debian's fail2ban with apt-get"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends fail2ban >/dev/null; then
        have_fail2ban=1
    else
        say "== apt-get install fail2ban failed: fail2ban-regex columns will be n/a"
    fi
else
    say "== fail2ban-regex missing and cannot install it (need root and apt-get): columns n/a"
fi
if [ "$have_fail2ban" = 1 ]; then
    say "== $(fail2ban-regex -V 2>&1 | head -1 | sed 's/^/fail2ban-regex /')"
fi

# --- helpers ------------------------------------------------------------------------------
# Filter argument for a format: a name under $CONF/filter.d, or our own OpenSMTPD file.
filter_for() {
    case "$1" in
        opensmtpd) printf '%s\n' "$here/filter.d/opensmtpd.conf" ;;
        *) printf '%s\n' "$1" ;;
    esac
}

# A grep -E pattern matching roughly the same attack lines as the filter (no date parsing,
# no address extraction: the floor any regex engine pays to look at every line).
grep_pattern() {
    case "$1" in
        sshd) printf '%s' 'sshd\[[0-9]+\]: (error: )?(Failed [a-z/-]+ for|Invalid user|maximum authentication attempts|PAM: Authentication failure)' ;;
        postfix) printf '%s' 'postfix/smtpd\[[0-9]+\]: ([0-9A-Za-z]+: )?(reject: [A-Z]+ from [^[]*\[[0-9a-fA-F.:]+\](:[0-9]+)?: [45][50][04] |improper command pipelining after )' ;;
        kerio) printf '%s' '^\[[^]]+\] (SMTP Spam attack detected from|IP address [^ ]+ found in DNS blacklist|Relay attempt from IP address|Attempt to deliver to unknown recipient|Failed SMTP login from|SMTP: User [^ ]+ doesn.t exist|Client with IP address [^ ]+ has no reverse DNS|Administration login into Web Administration from [^ ]+ failed|Message from IP address [^ ]+, sender [^ ]+ rejected)' ;;
        opensmtpd) printf '%s' 'smtpd\[[0-9]+\]: [0-9a-f]{16} smtp (authentication user=[^ ]+ result=permfail|failed-command command="(AUTH [^ ]+|RCPT TO:[^"]*)" result="5)' ;;
    esac
}

now_ns() { date +%s%N; }

# time_cmd OUTFILE CMD... : runs CMD with stdout to OUTFILE; prints "seconds max_rss_kb status".
time_cmd() {
    local outfile="$1"; shift
    local start end rss status
    start=$(now_ns)
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%M' -o "$out/.rss" "$@" >"$outfile" 2>"$out/.stderr"
        status=$?
        rss=$(tail -1 "$out/.rss" 2>/dev/null)
    else
        "$@" >"$outfile" 2>"$out/.stderr"
        status=$?
        rss=0
    fi
    end=$(now_ns)
    awk -v s="$start" -v e="$end" -v r="${rss:-0}" -v st="$status" \
        'BEGIN { printf "%.3f %s %s\n", (e - s) / 1e9, r, st }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# bench_tool NAME FORMAT CMD... : RUNS timed runs; sets REPLY="median_seconds median_rss_kb"
# or "nan nan" when any run failed (its stderr is kept in $out/NAME-FORMAT.err).
bench_tool() {
    local name="$1" format="$2"; shift 2
    local times=() rsss=() i result
    for ((i = 1; i <= RUNS; i++)); do
        result=$(time_cmd "$out/$name-$format.out" "$@")
        read -r secs rss status <<<"$result"
        # grep -c exits 1 when it counts 0 lines: that is still a successful run.
        if [ "$status" != 0 ] && ! { [ "$name" = grep ] && [ "$status" = 1 ]; }; then
            cp "$out/.stderr" "$out/$name-$format.err"
            say "   $name failed on $format (exit $status), see $out/$name-$format.err"
            REPLY="nan nan"
            return
        fi
        times+=("$secs")
        rsss+=("$rss")
        say "   $name $format run $i: ${secs}s, ${rss} KB"
    done
    REPLY="$(printf '%s\n' "${times[@]}" | median) $(printf '%s\n' "${rsss[@]}" | median)"
}

rate() { awk -v n="$LINES" -v s="$1" 'BEGIN { if (s == "nan" || s <= 0) print "n/a"; else printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || a <= 0) print "n/a"; else printf "%.2fx", b / a }'; }

# --- run ----------------------------------------------------------------------------------
say "== config: $CONF; $LINES lines per log; $RUNS runs each"
table="$out/results.txt"
{
    printf '%-10s %9s | %8s %10s %8s | %8s %10s %8s | %8s %10s | %9s %9s\n' \
        format lines ironban lines/s RSS_KB fail2ban lines/s RSS_KB grep lines/s \
        "vs f2b" "vs grep"
} >"$table"
counts="$out/counts.txt"
: >"$counts"

for format in $FORMATS; do
    log="$out/$format-$LINES-$SEED.log"
    if [ ! -s "$log" ]; then
        say "== generating $log"
        "$loggen" "$format" "$LINES" --seed "$SEED" >"$log" 2>"$out/$format.gen" || exit 1
    fi
    filter="$(filter_for "$format")"

    say "== $format: ironban regex-check --json"
    bench_tool ironban "$format" "$ironban" -c "$CONF" regex-check --json "$log" "$filter"
    read -r ib_s ib_rss <<<"$REPLY"
    ib_failures=$( [ "$ib_s" = nan ] && echo n/a || wc -l <"$out/ironban-$format.out")

    f2_s=nan f2_rss=nan f2_lines=n/a
    if [ "$have_fail2ban" = 1 ]; then
        say "== $format: fail2ban-regex"
        bench_tool fail2ban "$format" fail2ban-regex -c "$CONF" "$log" "$filter"
        read -r f2_s f2_rss <<<"$REPLY"
        f2_lines=$(grep -m1 '^Lines:' "$out/fail2ban-$format.out" || echo n/a)
    fi

    say "== $format: grep -c"
    bench_tool grep "$format" env LC_ALL=C grep -E -c "$(grep_pattern "$format")" "$log"
    read -r gr_s gr_rss <<<"$REPLY"
    gr_count=$(cat "$out/grep-$format.out" 2>/dev/null || echo n/a)

    # Correctness cross-check (untimed): ironban's report "Lines:" must equal fail2ban's.
    ib_lines=$("$ironban" -c "$CONF" regex-check "$log" "$filter" 2>/dev/null | grep -m1 '^Lines:' || echo n/a)
    {
        printf '%s: generator: %s\n' "$format" "$(cat "$out/$format.gen")"
        printf '%s: ironban  %s; --json failures: %s\n' "$format" "$ib_lines" "$ib_failures"
        printf '%s: fail2ban %s\n' "$format" "$f2_lines"
        printf '%s: grep -c  %s\n' "$format" "$gr_count"
        if [ "$ib_lines" != n/a ] && [ "$f2_lines" != n/a ] && [ "$ib_lines" != "$f2_lines" ]; then
            printf '%s: MISMATCH between ironban and fail2ban line classification\n' "$format"
        fi
    } >>"$counts"

    printf '%-10s %9s | %8s %10s %8s | %8s %10s %8s | %8s %10s | %9s %9s\n' \
        "$format" "$LINES" "$ib_s" "$(rate "$ib_s")" "$ib_rss" \
        "$f2_s" "$(rate "$f2_s")" "$f2_rss" "$gr_s" "$(rate "$gr_s")" \
        "$(ratio "$ib_s" "$f2_s")" "$(ratio "$ib_s" "$gr_s")" >>"$table"
done

rm -f "$out/.rss" "$out/.stderr"
echo
echo "Median wall time in seconds over $RUNS runs; RSS = median peak resident set."
echo "'vs f2b' = ironban speed / fail2ban-regex speed; 'vs grep' = ironban speed / grep speed."
cat "$table"
echo
cat "$counts"
