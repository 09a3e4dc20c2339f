//! The `ironban` command line: parse arguments, dispatch to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A fail2ban-compatible ban engine.
#[derive(Parser)]
#[command(name = "ironban", version, about)]
struct Cli {
    /// Configuration directory (as fail2ban's -c).
    #[arg(
        short = 'c',
        long = "conf",
        global = true,
        default_value = "/etc/fail2ban"
    )]
    conf: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read the configuration: dump its command stream or test it.
    Config(ironban::config::cli::Args),
    /// Test a filter against a log (the fail2ban-regex equivalent).
    RegexCheck(ironban::regexcheck::Args),
    /// Evaluate failJSON-annotated sample logs against filters.
    TestSamples(ironban::samples::Args),
    /// Run the ban daemon.
    Server(ironban::server::Args),
    /// Talk to a running server over its control socket.
    Client(ironban::control::ClientArgs),
    /// Process new log lines once, ban, unban expired, and exit (for cron).
    RunOnce(ironban::server::RunOnceArgs),
    /// Import the bans of an existing fail2ban database.
    ImportDb(ironban::db::ImportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Config(args) => ironban::config::cli::run(&cli.conf, args),
        Command::RegexCheck(args) => ironban::regexcheck::run(&cli.conf, args),
        Command::TestSamples(args) => ironban::samples::run(&cli.conf, args),
        Command::Server(args) => ironban::server::run(&cli.conf, args),
        Command::Client(args) => ironban::control::run_client(&cli.conf, args),
        Command::RunOnce(args) => ironban::server::run_once(&cli.conf, args),
        Command::ImportDb(args) => ironban::db::run_import(&cli.conf, args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("ERROR: {err:#}");
            ExitCode::from(255)
        }
    }
}
