//! fail2ban time strings (`10m`, `1h30m`, `-1`) to seconds, as
//! `MyTime.str2seconds`: unit words become `*<seconds>`, adjacent numbers are
//! added, and the result is evaluated as a Python arithmetic expression.

/// A Python number: the expression keeps int-ness until a float or `/` appears.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seconds {
    Int(i64),
    Float(f64),
}

impl Seconds {
    pub fn as_f64(self) -> f64 {
        match self {
            Seconds::Int(i) => i as f64,
            Seconds::Float(f) => f,
        }
    }

    /// Python `print()` form (`600`, `5400.0`).
    pub fn python_str(self) -> String {
        match self {
            Seconds::Int(i) => i.to_string(),
            Seconds::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => {
                format!("{f:.1}")
            }
            Seconds::Float(f) => f.to_string(),
        }
    }
}

/// Seconds of a fail2ban time string as a float.
pub fn str2seconds(s: &str) -> Result<f64, String> {
    str2seconds_typed(s).map(Seconds::as_f64)
}

/// Unit words in fail2ban's replacement order; each alternative list is tried
/// in order at a position like Python's regex alternation (`days?` = `days`, `day`).
const UNITS: &[(&[&str], &str)] = &[
    (&["days", "day", "da", "dd", "d"], "*86400"),
    (&["weeks", "week", "wee", "we", "ww", "w"], "*604800"),
    (&["months", "month", "mon", "mo"], "*2629800.0"),
    (&["years", "year", "yea", "ye", "yy", "y"], "*31557600.0"),
    (&["seconds", "second", "sec", "se", "ss", "s"], "*1"),
    (&["minutes", "minute", "min", "mi", "mm", "m"], "*60"),
    (&["hours", "hour", "hou", "ho", "hh", "h"], "*3600"),
];

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Seconds of a fail2ban time string, keeping Python's int/float distinction.
pub fn str2seconds_typed(s: &str) -> Result<Seconds, String> {
    // 1. a letter directly followed by a digit gets a space in between
    let mut prepared = String::with_capacity(s.len() + 4);
    let mut prev: Option<char> = None;
    for c in s.chars() {
        if c.is_ascii_digit() && prev.is_some_and(|p| p.is_alphabetic()) {
            prepared.push(' ');
        }
        prepared.push(c);
        prev = Some(c);
    }
    // 2. unit words after a digit or whitespace, ending at a word boundary
    let mut text: Vec<char> = prepared.chars().collect();
    for (words, repl) in UNITS {
        let mut out: Vec<char> = Vec::with_capacity(text.len() + 8);
        let mut i = 0;
        while i < text.len() {
            let after_num = i > 0 && (text[i - 1].is_ascii_digit() || text[i - 1].is_whitespace());
            let mut matched = 0;
            if after_num {
                for w in words.iter() {
                    let n = w.chars().count();
                    if i + n <= text.len()
                        && text[i..i + n]
                            .iter()
                            .zip(w.chars())
                            .all(|(a, b)| a.to_lowercase().eq(b.to_lowercase()))
                        && (i + n == text.len() || !is_word(text[i + n]))
                    {
                        matched = n;
                        break;
                    }
                }
            }
            if matched > 0 {
                out.extend(repl.chars());
                i += matched;
            } else {
                out.push(text[i]);
                i += 1;
            }
        }
        text = out;
    }
    // 3. `digit <spaces> digit` means addition
    let mut joined: Vec<char> = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i].is_ascii_digit() {
            let mut j = i + 1;
            while j < text.len() && text[j].is_whitespace() {
                j += 1;
            }
            if j > i + 1 && j < text.len() && text[j].is_ascii_digit() {
                joined.push(text[i]);
                joined.push('+');
                joined.push(text[j]);
                i = j + 1;
                continue;
            }
        }
        joined.push(text[i]);
        i += 1;
    }
    let expr: String = joined.into_iter().collect();
    let mut parser = Expr {
        chars: expr.chars().collect(),
        pos: 0,
    };
    let value = parser
        .sum()
        .map_err(|e| format!("invalid time string {s:?}: {e}"))?;
    parser.skip_ws();
    if parser.pos != parser.chars.len() {
        return Err(format!("invalid time string {s:?}: unexpected text"));
    }
    Ok(value)
}

struct Expr {
    chars: Vec<char>,
    pos: usize,
}

fn arith(a: Seconds, b: Seconds, op: char) -> Result<Seconds, String> {
    use Seconds::*;
    Ok(match (a, b, op) {
        (_, _, '/') => {
            let d = b.as_f64();
            if d == 0.0 {
                return Err("division by zero".into());
            }
            Float(a.as_f64() / d)
        }
        (Int(x), Int(y), '+') => Int(x.checked_add(y).ok_or("overflow")?),
        (Int(x), Int(y), '-') => Int(x.checked_sub(y).ok_or("overflow")?),
        (Int(x), Int(y), '*') => Int(x.checked_mul(y).ok_or("overflow")?),
        (x, y, '+') => Float(x.as_f64() + y.as_f64()),
        (x, y, '-') => Float(x.as_f64() - y.as_f64()),
        (x, y, _) => Float(x.as_f64() * y.as_f64()),
    })
}

impl Expr {
    fn skip_ws(&mut self) {
        while self.pos < self.chars.len() && self.chars[self.pos].is_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).copied()
    }

    fn sum(&mut self) -> Result<Seconds, String> {
        let mut acc = self.product()?;
        while let Some(op @ ('+' | '-')) = self.peek() {
            self.pos += 1;
            let rhs = self.product()?;
            acc = arith(acc, rhs, op)?;
        }
        Ok(acc)
    }

    fn product(&mut self) -> Result<Seconds, String> {
        let mut acc = self.unary()?;
        while let Some(op @ ('*' | '/')) = self.peek() {
            self.pos += 1;
            let rhs = self.unary()?;
            acc = arith(acc, rhs, op)?;
        }
        Ok(acc)
    }

    fn unary(&mut self) -> Result<Seconds, String> {
        match self.peek() {
            Some('-') => {
                self.pos += 1;
                let v = self.unary()?;
                arith(Seconds::Int(0), v, '-')
            }
            Some('+') => {
                self.pos += 1;
                self.unary()
            }
            Some('(') => {
                self.pos += 1;
                let v = self.sum()?;
                if self.peek() != Some(')') {
                    return Err("missing ')'".into());
                }
                self.pos += 1;
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(c) => Err(format!("unexpected {c:?}")),
            None => Err("unexpected end".into()),
        }
    }

    fn number(&mut self) -> Result<Seconds, String> {
        let start = self.pos;
        while self.pos < self.chars.len()
            && (self.chars[self.pos].is_ascii_digit() || self.chars[self.pos] == '.')
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if text.contains('.') {
            text.parse::<f64>()
                .map(Seconds::Float)
                .map_err(|_| format!("bad number {text:?}"))
        } else {
            text.parse::<i64>()
                .map(Seconds::Int)
                .map_err(|_| format!("bad number {text:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_table() {
        let cases: &[(&str, &str)] = &[
            ("600", "600"),
            ("10m", "600"),
            ("1d12h", "129600"),
            ("1h 30m", "5400"),
            ("1w", "604800"),
            ("1mo", "2629800.0"),
            ("1y", "31557600.0"),
            ("1year-6mo", "15778800.0"),
            ("-1", "-1"),
            ("2*3600", "7200"),
            ("1.5h", "5400.0"),
            ("5 m", "300"),
            ("1d 2", "86402"),
            ("10 minutes", "600"),
            ("3d-1h", "255600"),
            ("1H", "3600"),
            ("1M", "60"),
            ("1dd", "86400"),
        ];
        for (input, want) in cases {
            let got = str2seconds_typed(input).map(Seconds::python_str);
            assert_eq!(got.as_deref(), Ok(*want), "input {input:?}");
        }
        assert!(str2seconds("1x").is_err());
        assert!(str2seconds("").is_err());
        assert!(str2seconds("((").is_err());
        assert_eq!(str2seconds("1h"), Ok(3600.0));
    }
}
