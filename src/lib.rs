//! ironban: a fail2ban-compatible ban engine.
//!
//! Data flows one way: configuration (`config`) produces a command stream;
//! log sources (`logsource`) yield lines; filters (`filter`, with `date`)
//! turn lines into failures; `bans` counts failures and decides bans;
//! `actions` run the ban commands; `db` persists; `server` ties it together
//! and `control` exposes it over a Unix socket.

pub mod actions;
pub mod addr;
pub mod bans;
pub mod config;
pub mod control;
pub mod date;
pub mod db;
pub mod engine;
pub mod filter;
pub mod ignore;
pub mod jail;
pub mod loadtime;
pub mod logsource;
pub mod regexcheck;
pub mod samples;
pub mod server;
pub mod timestr;
