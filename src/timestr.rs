//! fail2ban time strings (`10m`, `1h30m`, `-1`) to seconds.
