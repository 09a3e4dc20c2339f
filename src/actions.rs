//! Action commands: tag substitution, shell-safe values, execution with timeouts.
