//! `ironban config dump|test`.

use std::io::Write;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand)]
pub enum Action {
    /// Print the command stream, as `fail2ban-client -d`.
    Dump {
        /// One JSON array per line instead of Python repr.
        #[arg(long)]
        json: bool,
    },
    /// Test the configuration, as `fail2ban-client -t`.
    Test,
}

/// fail2ban-client's exit code for a failed configuration.
const EXIT_FAILED: u8 = 255;

pub fn run(conf: &Path, args: Args) -> anyhow::Result<u8> {
    let loaded = match args.action {
        Action::Dump { .. } => super::load(conf),
        Action::Test => super::load_for_test(conf),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.action {
        Action::Dump { json } => match loaded {
            Ok(l) => {
                for w in &l.warnings {
                    eprintln!("WARNING: {w}");
                }
                for cmd in &l.stream {
                    let list = super::Value::List(cmd.clone());
                    let line = if json {
                        list.to_json().to_string()
                    } else {
                        list.python_repr()
                    };
                    writeln!(out, "{line}")?;
                }
                Ok(if l.ok { 0 } else { EXIT_FAILED })
            }
            Err(e) => {
                eprintln!("ERROR: Failed during configuration: {e}");
                writeln!(
                    out,
                    "ERROR: The configuration stream failed because of the invalid syntax."
                )?;
                Ok(EXIT_FAILED)
            }
        },
        Action::Test => match loaded {
            Ok(l) => {
                for w in &l.warnings {
                    eprintln!("WARNING: {w}");
                }
                let errors: Vec<&str> = l
                    .stream
                    .iter()
                    .filter(|c| c.first().and_then(super::Value::as_str) == Some("config-error"))
                    .filter_map(|c| c.get(1).and_then(super::Value::as_str))
                    .collect();
                for e in &errors {
                    eprintln!("ERROR: {e}");
                }
                if l.test_ok && l.ok {
                    writeln!(out, "OK: configuration test is successful")?;
                    Ok(0)
                } else {
                    writeln!(out, "ERROR: test configuration failed")?;
                    Ok(EXIT_FAILED)
                }
            }
            Err(e) => {
                eprintln!("ERROR: Failed during configuration: {e}");
                writeln!(out, "ERROR: test configuration failed")?;
                Ok(EXIT_FAILED)
            }
        },
    }
}
