//! Property test: random and garbled INI text never panics the parser or
//! `load`, and every error names the file it came from.

use ironban::config::ini::parse_ini;
use ironban::config::load;

/// xorshift64*: small deterministic PRNG so failures are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "[",
    "]",
    "=",
    ":",
    "%(",
    ")s",
    "%",
    "<",
    ">",
    "\n",
    "\n  ",
    "\n\t",
    " ",
    ";",
    "#",
    "[DEFAULT]\n",
    "[INCLUDES]\n",
    "[Definition]\n",
    "[Init]\n",
    "[Init?family=inet6]\n",
    "[j]\n",
    "before = ",
    "after = ",
    "enabled = true\n",
    "filter = ",
    "action = ",
    "failregex = ",
    "logpath = ",
    "known/",
    "default/",
    "%(known/x)s",
    "%(__name__)s",
    "<known/chain>",
    "x",
    "name",
    "é",
    "\u{0}",
    "[k=1",
    "a[x=\"",
    "\r\n",
];

fn random_text(rng: &mut Rng) -> String {
    let mut s = String::new();
    let n = rng.below(60);
    for _ in 0..n {
        if rng.below(10) == 0 {
            let bytes: Vec<u8> = (0..rng.below(8)).map(|_| rng.below(256) as u8).collect();
            s.push_str(&String::from_utf8_lossy(&bytes));
        } else {
            s.push_str(PIECES[rng.below(PIECES.len())]);
        }
    }
    s
}

#[test]
fn parser_never_panics_and_names_file() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for i in 0..5000 {
        let text = random_text(&mut rng);
        let source = format!("/fuzz/file{i}.conf");
        if let Err(e) = parse_ini(&text, &source) {
            assert!(
                e.to_string().contains(&source),
                "error without file: {e} for {text:?}"
            );
        }
    }
}

#[test]
fn load_never_panics_and_errors_name_a_file() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let dir = std::env::temp_dir().join(format!("ironban-fuzz-{}", std::process::id()));
    for round in 0..300 {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("filter.d")).expect("mkdir");
        std::fs::create_dir_all(dir.join("action.d")).expect("mkdir");
        let files = [
            "fail2ban.conf",
            "jail.conf",
            "jail.local",
            "filter.d/x.conf",
            "action.d/x.conf",
        ];
        for f in files {
            // keep a plausible skeleton half of the time so the deeper readers run too
            let text = if rng.below(2) == 0 {
                let base = match f {
                    "jail.conf" => "[j]\nenabled = true\nfilter = x\naction = x\n",
                    "filter.d/x.conf" => "[Definition]\nfailregex = ^<HOST>\n",
                    "action.d/x.conf" => "[Definition]\nactionban = ban <ip>\n",
                    _ => "[Definition]\n",
                };
                format!("{base}{}", random_text(&mut rng))
            } else {
                random_text(&mut rng)
            };
            std::fs::write(dir.join(f), text).expect("write");
        }
        if let Err(e) = load(&dir) {
            let msg = e.to_string();
            let names_file = msg.contains(&dir.display().to_string()) || e.file.is_some();
            assert!(names_file, "round {round}: error without file: {msg}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
