//! ironban's own configuration tree, with every jail enabled (tests/suite_dump/jail.local.in),
//! must give exactly the command stream fail2ban gives for it: `ironban config dump` is
//! compared with `tests/suite_dump/expected.stream`, recorded with `fail2ban-client -d`.
//!
//! After changing fail2ban.conf, jail.conf, jail.d/, filter.d/ or action.d/, re-record it
//! (Debian's fail2ban package; R = the repository):
//!     mkdir /tmp/dumpconf && for f in fail2ban.conf jail.conf paths-common.conf filter.d \
//!         action.d jail.d; do ln -s $R/$f /tmp/dumpconf/$f; done
//!     printf '# test\n192.0.2.0/24\n' > /tmp/dumpconf/ignore-list
//!     sed "s#@REPO@#$R#g; s#@CONF@#/tmp/dumpconf#g" tests/suite_dump/jail.local.in \
//!         > /tmp/dumpconf/jail.local
//!     fail2ban-client -c /tmp/dumpconf -d | sed "s#$R#@REPO@#g; s#/tmp/dumpconf#@CONF@#g" \
//!         > tests/suite_dump/expected.stream

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A config directory that links to the repository's tree and adds the test jail.local.
fn test_conf_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ironban-suite-dump-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp conf dir");
    for name in [
        "fail2ban.conf",
        "jail.conf",
        "paths-common.conf",
        "filter.d",
        "action.d",
        "jail.d",
    ] {
        std::os::unix::fs::symlink(repo().join(name), dir.join(name)).expect("symlink");
    }
    std::fs::write(dir.join("ignore-list"), "# test\n192.0.2.0/24\n").expect("ignore list");
    let template = std::fs::read_to_string(repo().join("tests/suite_dump/jail.local.in"))
        .expect("read jail.local.in");
    let jail_local = template
        .replace("@REPO@", &repo().to_string_lossy())
        .replace("@CONF@", &dir.to_string_lossy());
    std::fs::write(dir.join("jail.local"), jail_local).expect("write jail.local");
    dir
}

fn placeholders(text: &str, conf: &Path) -> String {
    text.replace(&*repo().to_string_lossy(), "@REPO@")
        .replace(&*conf.to_string_lossy(), "@CONF@")
}

#[test]
fn own_tree_dumps_like_fail2ban() {
    let conf = test_conf_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_ironban"))
        .arg("-c")
        .arg(&conf)
        .arg("config")
        .arg("dump")
        .output()
        .expect("run ironban config dump");
    let _ = std::fs::remove_dir_all(&conf);
    assert!(
        out.status.success(),
        "config dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // fail2ban does not know ironban's success-exclusion options; everything else must match.
    let actual: String = placeholders(&String::from_utf8_lossy(&out.stdout), &conf)
        .lines()
        .filter(|l| {
            !["successfilter", "successlogpath", "successtime"]
                .iter()
                .any(|o| l.contains(&format!("', '{o}', ")))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let expected = std::fs::read_to_string(repo().join("tests/suite_dump/expected.stream"))
        .expect("read expected.stream");
    let jails = expected
        .lines()
        .filter(|l| l.starts_with("['start',"))
        .count();
    assert_eq!(jails, 11, "the recorded stream should start all 11 jails");
    for (number, (got, want)) in actual.lines().zip(expected.lines()).enumerate() {
        assert_eq!(got, want, "stream line {} differs", number + 1);
    }
    assert_eq!(
        actual.lines().count(),
        expected.lines().count(),
        "stream length"
    );
}
