//! YAML 1.1 types of plain scalars, as go-yaml v1 (coreos-cloudinit's YAML library) resolved
//! them: `resolve.go` of the vendored `github.com/coreos/yaml`, with Go's `strconv` number syntax.

/// A plain scalar's YAML 1.1 type as go-yaml v1's `resolve` computes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str,
}

impl Resolved {
    pub fn tag(self) -> &'static str {
        match self {
            Resolved::Null => "null",
            Resolved::Bool(_) => "bool",
            Resolved::Int(_) => "int",
            Resolved::Float(_) => "float",
            Resolved::Str => "str",
        }
    }
}

/// go-yaml v1 `resolve("", s)`: the first byte picks the candidates (sign/digit: number; one of
/// `yYnNtTfFoO~`: the boolean/null table; `.`: float), anything else is a string. No timestamps,
/// no base-60 numbers.
pub fn resolve_plain(s: &str) -> Resolved {
    let Some(&first) = s.as_bytes().first() else {
        return Resolved::Null;
    };
    let hint = match first {
        b'+' | b'-' | b'0'..=b'9' => 'D',
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => 'M',
        b'.' => '.',
        _ => return Resolved::Str,
    };
    if let Some(r) = resolve_table(s) {
        return r;
    }
    match hint {
        '.' => go_parse_float(s).map_or(Resolved::Str, Resolved::Float),
        'D' => {
            let plain = s.replace('_', "");
            if let Some(i) = go_parse_int(&plain) {
                Resolved::Int(i)
            } else {
                go_parse_float(&plain).map_or(Resolved::Str, Resolved::Float)
            }
        }
        _ => Resolved::Str,
    }
}

fn resolve_table(s: &str) -> Option<Resolved> {
    Some(match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Resolved::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Resolved::Bool(false)
        }
        "~" | "null" | "Null" | "NULL" => Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Resolved::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Resolved::Float(f64::NEG_INFINITY),
        _ => return None,
    })
}

/// Go `strconv.ParseInt(s, 0, 64)`: optional sign, then `0x`, `0o`, `0b`, a leading `0` (octal)
/// or decimal digits.
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go `strconv.ParseFloat(s, 64)` for decimal input: signs, `inf`/`infinity` (signed), `nan`
/// (unsigned); out-of-range values are errors, as in Go.
fn go_parse_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned
        .bytes()
        .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E'))
    {
        let word = unsigned.to_ascii_lowercase();
        let neg = s.starts_with('-');
        return match word.as_str() {
            "inf" | "infinity" => Some(if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }),
            "nan" if unsigned.len() == s.len() => Some(f64::NAN),
            _ => None,
        };
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_1_plain_scalars() {
        for (input, want) in [
            ("off", Resolved::Bool(false)),
            ("yes", Resolved::Bool(true)),
            ("Y", Resolved::Bool(true)),
            ("On", Resolved::Bool(true)),
            ("tRUE", Resolved::Str),
            ("0744", Resolved::Int(0o744)),
            ("0800", Resolved::Float(800.0)),
            ("0x1F", Resolved::Int(31)),
            ("0b101", Resolved::Int(5)),
            ("-0o17", Resolved::Int(-15)),
            ("1_000", Resolved::Int(1000)),
            ("+12", Resolved::Int(12)),
            ("-9223372036854775808", Resolved::Int(i64::MIN)),
            ("9223372036854775808", Resolved::Float(9.223372036854776e18)),
            ("1e3", Resolved::Float(1000.0)),
            ("1e400", Resolved::Str),
            (".5", Resolved::Float(0.5)),
            (".", Resolved::Str),
            ("-inf", Resolved::Float(f64::NEG_INFINITY)),
            ("+Infinity", Resolved::Float(f64::INFINITY)),
            (".Inf", Resolved::Float(f64::INFINITY)),
            ("+nan", Resolved::Str),
            ("0x", Resolved::Str),
            ("20:60", Resolved::Str),
            ("2001-12-14", Resolved::Str),
            ("<<", Resolved::Str),
            ("~", Resolved::Null),
            ("", Resolved::Null),
            ("Null", Resolved::Null),
            ("nULL", Resolved::Str),
        ] {
            assert_eq!(resolve_plain(input), want, "{input:?}");
        }
        assert!(matches!(resolve_plain(".nan"), Resolved::Float(f) if f.is_nan()));
    }
}
