//! The command line exposes every subcommand.

use std::process::Command;

#[test]
fn help_lists_subcommands() {
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("--help")
        .output()
        .expect("run ironban");
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in [
        "config",
        "regex-check",
        "test-samples",
        "server",
        "client",
        "run-once",
        "import-db",
    ] {
        assert!(text.contains(sub), "missing {sub} in help:\n{text}");
    }
}
