//! Python `glob.glob` for `logpath` entries: `*`, `?`, `[...]` per path
//! component, no recursion, dotfiles only matched by patterns starting with `.`.

use std::path::Path;

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Python `fnmatch` of one name against one pattern component.
pub fn fnmatch(name: &[char], pat: &[char]) -> bool {
    let (mut n, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() {
            match pat[p] {
                '*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                '?' => {
                    n += 1;
                    p += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = match_class(name[n], pat, p) {
                        if matched {
                            n += 1;
                            p = next;
                            continue;
                        }
                    } else if name[n] == '[' {
                        n += 1;
                        p += 1;
                        continue;
                    }
                }
                c if c == name[n] => {
                    n += 1;
                    p += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    while p < pat.len() && pat[p] == '*' {
        p += 1;
    }
    p == pat.len()
}

/// `[...]` class at `pat[p]`: Some((matches, index after class)), None if unterminated.
fn match_class(c: char, pat: &[char], p: usize) -> Option<(bool, usize)> {
    let mut i = p + 1;
    let negate = i < pat.len() && pat[i] == '!';
    if negate {
        i += 1;
    }
    let start = i;
    let mut matched = false;
    while i < pat.len() && (pat[i] != ']' || i == start) {
        if i + 2 < pat.len() && pat[i + 1] == '-' && pat[i + 2] != ']' {
            if pat[i] <= c && c <= pat[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if pat[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    if i >= pat.len() {
        return None;
    }
    Some((matched != negate, i + 1))
}

/// Paths matching `pattern`, sorted (fail2ban's order is directory order,
/// which callers must treat as unordered).
pub fn glob(pattern: &str) -> Vec<String> {
    if pattern.is_empty() {
        return Vec::new();
    }
    if !has_magic(pattern) {
        return if std::fs::symlink_metadata(pattern).is_ok() {
            vec![pattern.to_string()]
        } else {
            Vec::new()
        };
    }
    let absolute = pattern.starts_with('/');
    let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    let mut current: Vec<String> = vec![if absolute {
        "/".to_string()
    } else {
        String::new()
    }];
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let mut next = Vec::new();
        for base in &current {
            let join = |name: &str| {
                if base.is_empty() {
                    name.to_string()
                } else if base.ends_with('/') {
                    format!("{base}{name}")
                } else {
                    format!("{base}/{name}")
                }
            };
            if has_magic(comp) {
                let dir = if base.is_empty() { "." } else { base.as_str() };
                let Ok(rd) = std::fs::read_dir(dir) else {
                    continue;
                };
                let pat: Vec<char> = comp.chars().collect();
                let mut names: Vec<String> = rd
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| !n.starts_with('.') || comp.starts_with('.'))
                    .filter(|n| fnmatch(&n.chars().collect::<Vec<_>>(), &pat))
                    .collect();
                names.sort();
                for n in names {
                    let p = join(&n);
                    if last || Path::new(&p).is_dir() {
                        next.push(p);
                    }
                }
            } else {
                let p = join(comp);
                let ok = if last {
                    std::fs::symlink_metadata(&p).is_ok()
                } else {
                    Path::new(&p).is_dir()
                };
                if ok {
                    next.push(p);
                }
            }
        }
        current = next;
    }
    if pattern.ends_with('/') {
        current = current.into_iter().map(|p| format!("{p}/")).collect();
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(n: &str, p: &str) -> bool {
        fnmatch(
            &n.chars().collect::<Vec<_>>(),
            &p.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn fnmatch_rules() {
        assert!(m("a.log", "*.log"));
        assert!(m("a.log", "?.log"));
        assert!(!m("ab.log", "?.log"));
        assert!(m("a1", "a[0-9]"));
        assert!(!m("a1", "a[!0-9]"));
        assert!(m("x", "*"));
        assert!(!m("a.log.1", "*.log"));
    }

    #[test]
    fn glob_files() {
        let dir = std::env::temp_dir().join(format!("ironban-glob-{}", std::process::id()));
        let _ = std::fs::create_dir_all(dir.join("sub"));
        for f in ["a.log", "b.log", ".hidden.log", "sub/c.log"] {
            let _ = std::fs::write(dir.join(f), "");
        }
        let d = dir.display();
        assert_eq!(
            glob(&format!("{d}/*.log")),
            vec![format!("{d}/a.log"), format!("{d}/b.log")]
        );
        assert_eq!(
            glob(&format!("{d}/*/c.log")),
            vec![format!("{d}/sub/c.log")]
        );
        assert_eq!(glob(&format!("{d}/a.log")), vec![format!("{d}/a.log")]);
        assert!(glob(&format!("{d}/none.log")).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
