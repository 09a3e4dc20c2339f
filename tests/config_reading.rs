//! Configuration reading and dump rules on small hand-made trees
//! (spec "Tests (config reading)" and "Tests (dump)").

use ironban::config::ini::{parse_ini, FileCache, Unit};
use ironban::config::{filter_stream, load, Command, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh temp tree with the given files (removed on drop).
struct Tree(PathBuf);

impl Tree {
    fn new(files: &[(&str, &str)]) -> Tree {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("ironban-cfgtest-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tree = Tree(dir);
        tree.write("fail2ban.conf", "[Definition]\nloglevel = INFO\n");
        tree.write(
            "filter.d/f.conf",
            "[Definition]\nfailregex = ^fail <HOST>$\n",
        );
        tree.write(
            "action.d/a.conf",
            "[Definition]\nactionban = ban <ip> <name>\n",
        );
        tree.write("logs/j.log", "");
        for (name, text) in files {
            tree.write(name, text);
        }
        tree
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create test dir");
        }
        std::fs::write(path, text).expect("write test file");
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn log(&self) -> String {
        self.0.join("logs/j.log").display().to_string()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sv(v: &str) -> Value {
    Value::Str(v.to_string())
}

fn cmd(parts: &[Value]) -> Command {
    parts.to_vec()
}

fn jail_block(stream: &[Command], jail: &str) -> Vec<Command> {
    stream
        .iter()
        .filter(|c| c.get(1) == Some(&sv(jail)) && c.first() != Some(&sv("start")))
        .cloned()
        .collect()
}

fn dump(tree: &Tree) -> Vec<Command> {
    match load(tree.path()) {
        Ok(l) => l.stream,
        Err(e) => panic!("load failed: {e}"),
    }
}

fn simple_jail(tree_extra: &str) -> String {
    format!("[j]\nenabled = true\nfilter = f\naction = a\nlogpath = {{LOG}}\n{tree_extra}")
}

fn tree_with_jail(extra: &str, files: &[(&str, &str)]) -> Tree {
    let tree = Tree::new(files);
    let jail = simple_jail(extra).replace("{LOG}", &tree.log());
    tree.write("jail.conf", &jail);
    tree
}

#[test]
fn read_order_of_includes() {
    let tree = Tree::new(&[
        (
            "jail.conf",
            "[INCLUDES]\nbefore = paths-debian.conf\n[DEFAULT]\n",
        ),
        (
            "paths-debian.conf",
            "[INCLUDES]\nbefore = paths-common.conf\nafter = paths-overrides.local\n",
        ),
        (
            "paths-common.conf",
            "[INCLUDES]\nafter = paths-overrides.local\n",
        ),
        ("paths-common.local", "[DEFAULT]\n"),
        ("paths-overrides.local", "[DEFAULT]\n"),
        ("jail.d/a.conf", "[DEFAULT]\n"),
        ("jail.d/b.conf", "[DEFAULT]\n"),
        ("jail.d/a.local", "[DEFAULT]\n"),
        ("jail.local", "[DEFAULT]\n"),
    ]);
    let mut cache = FileCache::default();
    let unit = match Unit::read(&mut cache, tree.path(), "jail") {
        Ok(Some(u)) => u,
        other => panic!("unit not read: {other:?}"),
    };
    let names: Vec<String> = unit
        .files
        .iter()
        .map(|p| {
            p.strip_prefix(tree.path())
                .unwrap_or(p)
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        vec![
            "paths-common.conf",
            "paths-overrides.local",
            "paths-common.local",
            "paths-debian.conf",
            "paths-overrides.local",
            "jail.conf",
            "jail.d/a.conf",
            "jail.d/b.conf",
            "jail.local",
            "jail.d/a.local"
        ]
    );
}

#[test]
fn option_names_lowercased_tags_case_sensitive() {
    let tree = tree_with_jail(
        "Maxretry = 3\n",
        &[(
            "action.d/a.conf",
            "[Definition]\nactionban = ban <myTag> <mytag>\n[Init]\nmyTag = X\n",
        )],
    );
    let block = jail_block(&dump(&tree), "j");
    assert!(block.contains(&cmd(&[sv("set"), sv("j"), sv("maxretry"), Value::Int(3)])));
    let multi = block
        .iter()
        .find(|c| c.first() == Some(&sv("multi-set")))
        .expect("action multi-set");
    let pairs = multi[4].python_repr();
    assert!(pairs.contains("['actionban', 'ban <myTag> X']"), "{pairs}");
    assert!(pairs.contains("['mytag', 'X']"), "{pairs}");
}

#[test]
fn inline_and_full_line_comments() {
    let parsed = parse_ini(
        "[s]\nx = a ; c\ny = a;b\nz = 3 # c\nm = one\n  # dropped\n  two\n\n  three\n\n",
        "t.conf",
    )
    .expect("parses");
    let sect = &parsed.sections[0].1;
    let get = |k: &str| sect.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("x"), Some("a"));
    assert_eq!(get("y"), Some("a;b"));
    assert_eq!(get("z"), Some("3 # c"));
    assert_eq!(get("m"), Some("one\ntwo\n\nthree"));
}

#[test]
fn syntax_errors_name_the_file() {
    let dup_opt = parse_ini("[s]\na = 1\nA = 2\n", "/x/dup.conf").expect_err("duplicate option");
    assert!(dup_opt.to_string().contains("/x/dup.conf"));
    assert!(dup_opt
        .to_string()
        .contains("option 'a' in section 's' already exists"));
    let dup_sect = parse_ini("[s]\n[s]\n", "/x/s.conf").expect_err("duplicate section");
    assert!(dup_sect.to_string().contains("section 's' already exists"));
    assert!(parse_ini("[DEFAULT]\na=1\n[DEFAULT]\nb=2\n", "d.conf").is_ok());
    assert!(parse_ini("a = 1\n", "n.conf")
        .expect_err("no header")
        .to_string()
        .contains("no section headers"));
    assert!(parse_ini("[s]\njunk line\n", "j.conf")
        .expect_err("no delimiter")
        .to_string()
        .contains("parsing errors"));
    let p =
        parse_ini("[s]\nfindtime: 10m\nk =\n  [notasection]\n", "c.conf").expect("colon delimiter");
    assert_eq!(p.sections.len(), 1);
    assert_eq!(
        p.sections[0].1[0],
        ("findtime".to_string(), "10m".to_string())
    );
    assert_eq!(
        p.sections[0].1[1],
        ("k".to_string(), "\n[notasection]".to_string())
    );
}

#[test]
fn multiline_failregex_comments_and_blank_lines() {
    let tree = Tree::new(&[(
        "filter.d/m.conf",
        "[Definition]\nfailregex = ^one <HOST>\n    # comment\n\n    ^two <HOST>\n",
    )]);
    let stream = filter_stream(tree.path(), "m", "jj", &[]).expect("filter reads");
    assert_eq!(
        stream,
        vec![cmd(&[
            sv("multi-set"),
            sv("jj"),
            sv("addfailregex"),
            Value::List(vec![sv("^one <HOST>"), sv("^two <HOST>")])
        ])]
    );
}

#[test]
fn duplicate_option_fails_whole_config_override_across_files_works() {
    let tree = tree_with_jail("maxretry = 2\nmaxretry = 3\n", &[]);
    let err = load(tree.path()).expect_err("duplicate option is fatal");
    assert!(err.to_string().contains("jail.conf"), "{err}");
    let tree = tree_with_jail("maxretry = 2\n", &[("jail.local", "[j]\nmaxretry = 7\n")]);
    let block = jail_block(&dump(&tree), "j");
    assert!(block.contains(&cmd(&[sv("set"), sv("j"), sv("maxretry"), Value::Int(7)])));
}

#[test]
fn conditional_init_section() {
    let tree = tree_with_jail(
        "",
        &[(
            "action.d/a.conf",
            "[Definition]\nactionban = ban <blocktype> <ip>\n[Init]\nblocktype = REJECT\n[Init?family=inet6]\nblocktype = X\n",
        )],
    );
    let block = jail_block(&dump(&tree), "j");
    let text = Value::List(block.into_iter().map(Value::List).collect()).python_repr();
    assert!(text.contains("['blocktype?family=inet6', 'X']"), "{text}");
    // conditional base stays a runtime tag
    assert!(
        text.contains("['actionban', 'ban <blocktype> <ip>']"),
        "{text}"
    );
}

#[test]
fn cross_section_default_and_known_interpolation() {
    let jail_conf = "[DEFAULT]\nport = 22\nignoreip = 10.0.0.1\n[mysec]\nval = fromsec\n[j]\nenabled = true\nfilter = f\naction = a\nlogpath = {LOG}\nport = 80\nignoreip = 10.0.0.2\nbantime = %(mysec/val)s-%(default/port)s\n";
    let tree = Tree::new(&[]);
    tree.write("jail.conf", &jail_conf.replace("{LOG}", &tree.log()));
    tree.write("jail.local", "[j]\nignoreip = %(known/ignoreip)s 10.0.0.3\n[new]\nenabled = true\nfilter = f\nlogpath = {LOG}\nignoreip = %(known/ignoreip)s 9.9.9.9\n".replace("{LOG}", &tree.log()).as_str());
    let stream = dump(&tree);
    let block = jail_block(&stream, "j");
    assert!(block.contains(&cmd(&[sv("set"), sv("j"), sv("bantime"), sv("fromsec-22")])));
    assert!(block.contains(&cmd(&[
        sv("set"),
        sv("j"),
        sv("addignoreip"),
        sv("10.0.0.2"),
        sv("10.0.0.3")
    ])));
    let new = jail_block(&stream, "new");
    assert!(new.contains(&cmd(&[
        sv("set"),
        sv("new"),
        sv("addignoreip"),
        sv("10.0.0.1"),
        sv("9.9.9.9")
    ])));

    // upper-case reference fails; known/ in [DEFAULT] recurses
    let tree = tree_with_jail("bantime = %(MySec/val)s\n", &[]);
    tree.write("jail.local", "[mysec]\nval = 1\n");
    let err = load(tree.path()).expect_err("upper-case reference");
    assert!(err.to_string().contains("not a valid option name"), "{err}");
    let tree = tree_with_jail(
        "",
        &[(
            "jail.local",
            "[DEFAULT]\nignoreip = %(known/ignoreip)s 1.2.3.4\n",
        )],
    );
    let err = load(tree.path()).expect_err("self reference");
    assert!(
        err.to_string().contains("Recursion limit exceeded"),
        "{err}"
    );
}

#[test]
fn interpolation_error_in_disabled_jail_is_fatal() {
    let tree = tree_with_jail(
        "",
        &[("jail.local", "[off]\nenabled = false\nfilter = %(nope)s\n")],
    );
    let err = load(tree.path()).expect_err("fatal");
    assert!(err.to_string().contains("'nope'"), "{err}");
    assert!(err.to_string().contains("jail.local"), "{err}");
}

#[test]
fn bad_int_is_sent_as_none() {
    let tree = tree_with_jail("maxretry = abc\nmaxmatches = 3 # three\n", &[]);
    let block = jail_block(&dump(&tree), "j");
    assert!(block.contains(&cmd(&[sv("set"), sv("j"), sv("maxretry"), Value::None])));
    assert!(block.contains(&cmd(&[sv("set"), sv("j"), sv("maxmatches"), Value::None])));
}

#[test]
fn spec_args_and_jail_level_errors() {
    let tree = tree_with_jail(
        "",
        &[("filter.d/g.conf", "[Definition]\nfailregex = ^<a> <HOST>\n")],
    );
    tree.write(
        "jail.local",
        &format!(
            "[j]\nfilter = g[a=b c]\n[bad]\nenabled = true\nfilter = f\nlogpath = {log}\naction = a[k=1\n[sp]\nenabled = true\nfilter = f\nlogpath = {log}\naction = a [k=1]\n",
            log = tree.log()
        ),
    );
    let loaded = load(tree.path()).expect("loads");
    let block = jail_block(&loaded.stream, "j");
    assert!(block.contains(&cmd(&[
        sv("set"),
        sv("j"),
        sv("addfailregex"),
        sv("^b c <HOST>")
    ])));
    assert!(loaded.stream.contains(&cmd(&[
        sv("config-error"),
        sv("Jail 'bad' skipped, because of wrong configuration: Invalid action definition 'a[k=1': unexpected option syntax")
    ])));
    assert!(loaded.stream.contains(&cmd(&[
        sv("config-error"),
        sv("Jail 'sp' skipped, because of wrong configuration: Unable to read action 'a '")
    ])));
    assert!(loaded.ok, "one jail is fine");
    assert!(!loaded.test_ok, "-t fails on any jail error");
    assert!(loaded.stream.contains(&cmd(&[sv("start"), sv("j")])));
    assert!(!loaded.stream.contains(&cmd(&[sv("start"), sv("bad")])));
}

#[test]
fn dump_ordering_rules() {
    let tree = tree_with_jail(
        "",
        &[
            (
                "jail.local",
                "[j]\nfilter = o[maxlines=3]\nmaxlines = 5\ndatepattern = jaildate\nusedns = no\n",
            ),
            (
            "filter.d/o.conf",
            "[Definition]\nprefregex = ^pre <F-CONTENT>.+</F-CONTENT>$\nfailregex = ^f <HOST>\nignoreregex = ^ign\ndatepattern = fdate\n",
            ),
        ],
    );
    let block = jail_block(&dump(&tree), "j");
    let pos = |c: Command| block.iter().position(|x| *x == c).unwrap_or(usize::MAX);
    let usedns = pos(cmd(&[sv("set"), sv("j"), sv("usedns"), sv("no")]));
    assert_eq!(usedns, 1, "{block:?}");
    let jail_maxlines = pos(cmd(&[sv("set"), sv("j"), sv("maxlines"), Value::Int(5)]));
    let arg_maxlines = pos(cmd(&[sv("set"), sv("j"), sv("maxlines"), Value::Int(3)]));
    assert!(jail_maxlines < arg_maxlines, "{block:?}");
    let ign = pos(cmd(&[sv("set"), sv("j"), sv("addignoreregex"), sv("^ign")]));
    let fail = pos(cmd(&[
        sv("set"),
        sv("j"),
        sv("addfailregex"),
        sv("^f <HOST>"),
    ]));
    assert!(ign < fail && fail < usize::MAX, "{block:?}");
    let fdate = pos(cmd(&[sv("set"), sv("j"), sv("datepattern"), sv("fdate")]));
    let jdate = pos(cmd(&[
        sv("set"),
        sv("j"),
        sv("datepattern"),
        sv("jaildate"),
    ]));
    // the jail defines datepattern: the filter's is not read at all
    assert_eq!(fdate, usize::MAX, "{block:?}");
    assert!(jdate < usize::MAX);
}

#[test]
fn action_pairs_order_and_types() {
    let tree = tree_with_jail(
        "",
        &[
            ("jail.local", "[j]\nmaxretry = 5\naction = a[port=\"1,2\"]\n"),
            (
            "action.d/a.conf",
            "[Definition]\nnorestored = yes\nactionstop = stop <chain>\nactionban = ban <addr> <port> <maxretry>\n[Init]\nchain = C-<name>\naddr = v4\n[Init?family=inet6]\naddr = v6\n",
            ),
        ],
    );
    let stream = dump(&tree);
    let block = jail_block(&stream, "j");
    let multi = block
        .iter()
        .find(|c| c.first() == Some(&sv("multi-set")))
        .expect("multi-set");
    assert_eq!(
        multi[4].python_repr(),
        "[['actionstop', 'stop C-j'], ['actionban', 'ban <addr> 1,2 5'], ['norestored', True], ['port', '1,2'], ['name', 'j'], ['actname', 'a'], ['chain', 'C-<name>'], ['addr', 'v4'], ['addr?family=inet6', 'v6']]"
    );
    let _ = stream;
}

#[test]
fn missing_logs_and_systemd_switch() {
    let tree = Tree::new(&[(
        "filter.d/jm.conf",
        "[Definition]\nfailregex = ^x <HOST>\njournalmatch = _COMM=x\n",
    )]);
    tree.write(
        "jail.conf",
        "[DEFAULT]\nmaxretry = 5\n[miss]\nenabled = true\nfilter = f\nlogpath = /nonexistent/ironban/x.log\n[jm]\nenabled = true\nfilter = jm\nlogpath = /nonexistent/ironban/y.log\n[skip]\nenabled = true\nfilter = f\nskip_if_nologs = true\nlogpath = /nonexistent/z.log\n",
    );
    let loaded = load(tree.path()).expect("loads in dump mode");
    assert!(loaded
        .warnings
        .iter()
        .any(|w| w.contains("Have not found any log file for 'miss' jail.")));
    let miss = jail_block(&loaded.stream, "miss");
    assert_eq!(miss[0], cmd(&[sv("add"), sv("miss"), sv("auto")]));
    assert!(!miss.iter().any(|c| c.get(2) == Some(&sv("addlogpath"))));
    assert!(loaded.stream.contains(&cmd(&[sv("start"), sv("miss")])));
    let jm = jail_block(&loaded.stream, "jm");
    assert_eq!(jm[0], cmd(&[sv("add"), sv("jm"), sv("systemd")]));
    assert!(loaded.stream.contains(&cmd(&[
        sv("config-error"),
        sv("Jail 'skip' skipped, because of missing log files.")
    ])));
    assert!(!loaded.stream.contains(&cmd(&[sv("start"), sv("skip")])));
}

#[test]
fn all_jails_broken_is_failure_and_globals_first() {
    let tree = Tree::new(&[("jail.conf", "[x]\nenabled = true\nfilter = nosuchfilter\n")]);
    let loaded = load(tree.path()).expect("loads");
    assert!(!loaded.ok);
    assert_eq!(
        loaded.stream[0],
        cmd(&[sv("set"), sv("syslogsocket"), sv("auto")])
    );
    assert!(loaded.stream.contains(&cmd(&[
        sv("config-error"),
        sv("Jail 'x' skipped, because of wrong configuration: Unable to read the filter 'nosuchfilter'")
    ])));
    let tree = Tree::new(&[("jail.conf", "[x]\nenabled = false\n")]);
    assert!(
        load(tree.path()).expect("loads").ok,
        "no errors at all is success"
    );
}

#[test]
fn undecodable_filter_fails_only_its_jail() {
    let tree = tree_with_jail("", &[]);
    std::fs::write(
        tree.path().join("filter.d/bin.conf"),
        b"[Definition]\nfailregex = \xff\xfe\n",
    )
    .expect("write");
    tree.write(
        "jail.local",
        &format!(
            "[b]\nenabled = true\nfilter = bin\nlogpath = {}\n",
            tree.log()
        ),
    );
    let loaded = load(tree.path()).expect("not fatal");
    assert!(loaded.ok);
    assert!(loaded.stream.contains(&cmd(&[
        sv("config-error"),
        sv("Jail 'b' skipped, because of wrong configuration: Unable to read the filter 'bin'")
    ])));
    assert!(loaded.stream.contains(&cmd(&[sv("start"), sv("j")])));
}

#[test]
fn test_mode_requires_log_files() {
    let tree = Tree::new(&[(
        "jail.conf",
        "[miss]\nenabled = true\nfilter = f\nlogpath = /nonexistent/ironban/x.log\n",
    )]);
    assert!(load(tree.path()).is_ok());
    let err = ironban::config::load_for_test(tree.path()).expect_err("missing logs fatal in -t");
    assert!(err
        .to_string()
        .contains("Have not found any log file for 'miss' jail."));
    assert!(err.to_string().contains("jail.conf"), "{err}");
}

#[test]
fn missing_units_are_fatal() {
    let tree = Tree::new(&[]);
    let err = load(tree.path()).expect_err("no jail.conf");
    assert!(
        err.to_string()
            .starts_with("Read jails configuration failed."),
        "{err}"
    );
    std::fs::remove_file(tree.path().join("fail2ban.conf")).expect("remove");
    let err = load(tree.path()).expect_err("no fail2ban.conf");
    assert!(
        err.to_string()
            .starts_with("Read fail2ban configuration failed."),
        "{err}"
    );
    let err = load(&tree.path().join("nope")).expect_err("no base dir");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn python_action_stream_form() {
    let tree = tree_with_jail(
        "",
        &[(
            "jail.local",
            "[j]\naction = smtp.py[dest=\"me@x\", actname=mail, k=é]\n",
        )],
    );
    let block = jail_block(&dump(&tree), "j");
    let py = block.iter().find(|c| c.len() == 6).expect("python action");
    assert_eq!(py[3], sv("mail"));
    assert_eq!(
        py[4],
        sv(&tree.path().join("action.d/smtp.py").display().to_string())
    );
    assert_eq!(py[5], sv("{\"dest\": \"me@x\", \"k\": \"\\u00e9\"}"));
}

#[test]
fn foreign_filter_file_and_jail_stream() {
    let tree = tree_with_jail("maxretry = 2\n", &[]);
    tree.write(
        "own/x.conf",
        "[INCLUDES]\nbefore = common.conf\n[Definition]\nfailregex = ^<pre> <HOST> <arg>\n",
    );
    tree.write("own/common.conf", "[DEFAULT]\npre = P\n");
    let stream = ironban::config::filter_file_stream(
        &tree.path().join("own/x.conf"),
        &[("arg".to_string(), "A".to_string())],
        "jj",
    )
    .expect("foreign file");
    assert_eq!(
        stream,
        vec![cmd(&[
            sv("set"),
            sv("jj"),
            sv("addfailregex"),
            sv("^P <HOST> A")
        ])]
    );
    let block = ironban::config::jail_stream(tree.path(), "j", &[])
        .expect("reads")
        .expect("jail exists");
    assert_eq!(block[0], cmd(&[sv("add"), sv("j"), sv("auto")]));
    assert!(block.contains(&cmd(&[sv("set"), sv("j"), sv("maxretry"), Value::Int(2)])));
    assert!(ironban::config::jail_stream(tree.path(), "nojail", &[])
        .expect("reads")
        .is_none());
}
