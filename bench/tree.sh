# Sourced by the daemon benches: `bench_tree DIR CONF` makes DIR a copy of the fail2ban tree
# CONF whose server keeps its socket, pid file, database and log under DIR/run, with an
# empty DIR/logs for the jails' logs.
bench_tree() {
    local tree="$1" conf="$2"
    rm -rf "$tree"; mkdir -p "$tree/logs" "$tree/run"
    cp -r "$conf"/. "$tree/"
    cat > "$tree/fail2ban.local" <<EOC
[DEFAULT]
socket = $tree/run/s.sock
pidfile = $tree/run/p.pid
dbfile = $tree/run/db.sqlite3
logtarget = $tree/run/server.log
EOC
}
