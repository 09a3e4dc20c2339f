//! Filters: failregex/ignoreregex/prefregex matching turning log lines into failures.

pub mod regex;
