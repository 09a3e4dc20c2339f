//! Values of the configuration command stream and their two printed forms:
//! Python `repr` (as `fail2ban-client -d` prints) and JSON.

/// One element of a stream command, mirroring the Python types fail2ban sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Value>),
    Dict(Vec<(String, Value)>),
}

/// One stream command, e.g. `['set', 'sshd', 'maxretry', 5]`.
pub type Command = Vec<Value>;

impl Value {
    /// Python `repr` of the value.
    pub fn python_repr(&self) -> String {
        let mut out = String::new();
        self.write_repr(&mut out);
        out
    }

    fn write_repr(&self, out: &mut String) {
        match self {
            Value::None => out.push_str("None"),
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Str(s) => out.push_str(&python_str_repr(s)),
            Value::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_repr(out);
                }
                out.push(']');
            }
            Value::Dict(items) => {
                out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&python_str_repr(k));
                    out.push_str(": ");
                    v.write_repr(out);
                }
                out.push('}');
            }
        }
    }

    /// The value as JSON (what `json.dumps` would give for the Python value).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::None => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Dict(items) => serde_json::Value::Object(
                items
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Python `str()` of the value, used when typed jail options become
    /// interpolation variables (`True`, `5`, ...).
    pub fn python_str(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            other => other.python_repr(),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

/// A JSON string as serde_json writes it (`ascii == false`) or as Python's `json.dumps`
/// writes it with `ensure_ascii` (`ascii == true`: every character outside space..`~` as
/// `\uXXXX`, UTF-16 surrogate pairs above the BMP).
pub fn push_json_str(out: &mut String, text: &str, ascii: bool) {
    out.push('"');
    let plain = |b: &u8| *b >= b' ' && *b != b'"' && *b != b'\\' && (!ascii || *b <= b'~');
    // Most values need no escape: copy runs of plain bytes whole. A run ends only at an
    // ASCII byte or, in ASCII mode, at the first byte of a non-ASCII character.
    let mut rest = text;
    while let Some(run) = rest.bytes().position(|b| !plain(&b)) {
        out.push_str(&rest[..run]);
        rest = &rest[run..];
        let Some(c) = rest.chars().next() else { break };
        push_json_char(out, c, ascii);
        rest = &rest[c.len_utf8()..];
    }
    out.push_str(rest);
    out.push('"');
}

fn push_json_char(out: &mut String, c: char, ascii: bool) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        c if c < ' ' || (ascii && c > '~') => {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
        c => out.push(c),
    }
}

/// Python 3 `repr(str)`.
pub fn python_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_python_printable(c) => out.push(c),
            c => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable` for one character: everything except the
/// Unicode categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs (the ASCII space excepted).
fn is_python_printable(c: char) -> bool {
    if (' '..='~').contains(&c) {
        return true;
    }
    static NON_PRINTABLE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let re = NON_PRINTABLE
        .get_or_init(|| regex::Regex::new(r"^[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$").ok());
    let mut buf = [0u8; 4];
    match re {
        Some(re) => !re.is_match(c.encode_utf8(&mut buf)),
        None => (c as u32) >= 0xa0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_as_python_ensure_ascii_writes_them() {
        // python3 -c 'import json; print(json.dumps("q\"\\\b\f\x01\x7fé😀"))'
        let mut out = String::new();
        push_json_str(&mut out, "q\"\\\u{8}\u{c}\u{1}\u{7f}é😀", true);
        assert_eq!(out, r#""q\"\\\b\f\u0001\u007f\u00e9\ud83d\ude00""#);
        let mut out = String::new();
        push_json_str(&mut out, "é\u{7f}", false);
        assert_eq!(out, "\"é\u{7f}\"");
        let mut out = String::new();
        push_json_str(&mut out, "ab\"é c\u{1f}", true);
        assert_eq!(out, r#""ab\"\u00e9 c\u001f""#);
    }

    #[test]
    fn repr_quoting() {
        assert_eq!(python_str_repr("abc"), "'abc'");
        assert_eq!(python_str_repr("it's"), "\"it's\"");
        assert_eq!(python_str_repr("a\"b"), "'a\"b'");
        assert_eq!(python_str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(python_str_repr("\\s+"), "'\\\\s+'");
        assert_eq!(python_str_repr("a\nb\tc\r"), "'a\\nb\\tc\\r'");
        assert_eq!(python_str_repr("é€"), "'é€'");
        assert_eq!(python_str_repr("\u{1}\u{7f}"), "'\\x01\\x7f'");
        assert_eq!(
            python_str_repr("\u{a0}\u{200b}\u{378}"),
            "'\\xa0\\u200b\\u0378'"
        );
        assert_eq!(python_str_repr("\u{1f600}"), "'\u{1f600}'");
        assert_eq!(python_str_repr("\u{e0001}"), "'\\U000e0001'");
    }

    #[test]
    fn repr_command() {
        let cmd: Command = vec![
            "set".into(),
            "j".into(),
            Value::Int(5),
            Value::Bool(true),
            Value::None,
            Value::List(vec!["a".into()]),
            Value::Dict(vec![("stacksize".into(), Value::Int(32))]),
        ];
        assert_eq!(
            Value::List(cmd).python_repr(),
            "['set', 'j', 5, True, None, ['a'], {'stacksize': 32}]"
        );
    }
}
