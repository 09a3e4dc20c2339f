//! Configuration reading: fail2ban's INI dialect, includes, interpolation,
//! jails, filters and actions, producing fail2ban's command stream.

pub mod cli;
