//! `$public_ipv4`, `$private_ipv4`, `$public_ipv6`, `$private_ipv6` in user-data, as
//! coreos-cloudinit replaced them (initialize/env.go `Environment.Apply`; RULES.md, "substitution").
//!
//! A plain text substitution over the whole user-data, before YAML parsing (so it also applies in
//! comments, block scalars and scripts). For each variable, in turn:
//! 1. every occurrence not preceded by `\` becomes the value — upstream's regex
//!    `([^\\]|^)\$private_ipv4` consumed the preceding character, so of two adjacent occurrences
//!    only the first is replaced; there is no word boundary (`$private_ipv4x` → `10.0.0.1x`);
//! 2. then `\$private_ipv4` becomes the literal `$private_ipv4`.
//!
//! A variable without a value is replaced by the empty string. `${private_ipv4}` and other
//! `$names` are left alone.

/// The four addresses; `None` where neither the datasource nor the environment knows one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    pub public_ipv4: Option<String>,
    pub private_ipv4: Option<String>,
    pub public_ipv6: Option<String>,
    pub private_ipv6: Option<String>,
}

/// The environment variable that provides each address when the datasource does not
/// (`/etc/environment`, loaded by upstream's `user-cloudinit@.service`).
const ENV_NAMES: [&str; 4] = [
    "COREOS_PUBLIC_IPV4",
    "COREOS_PRIVATE_IPV4",
    "COREOS_PUBLIC_IPV6",
    "COREOS_PRIVATE_IPV6",
];

const VARIABLES: [&str; 4] = [
    "$public_ipv4",
    "$private_ipv4",
    "$public_ipv6",
    "$private_ipv6",
];

impl Addresses {
    /// The addresses named by `COREOS_*_IPV4`/`COREOS_*_IPV6` among `vars` (pass
    /// `std::env::vars()`); an empty value counts as set, as in upstream.
    pub fn from_env<I, K, V>(vars: I) -> Addresses
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut a = Addresses::default();
        for (k, v) in vars {
            if let Some(i) = ENV_NAMES.iter().position(|n| *n == k.as_ref()) {
                *a.slot_mut(i) = Some(v.into());
            }
        }
        a
    }

    /// Each address from `self` (the datasource's metadata), else from `fallback` (the
    /// environment): upstream's `firstNonNull`.
    pub fn or(self, fallback: Addresses) -> Addresses {
        Addresses {
            public_ipv4: self.public_ipv4.or(fallback.public_ipv4),
            private_ipv4: self.private_ipv4.or(fallback.private_ipv4),
            public_ipv6: self.public_ipv6.or(fallback.public_ipv6),
            private_ipv6: self.private_ipv6.or(fallback.private_ipv6),
        }
    }

    /// The `COREOS_*` variables upstream merged into `/etc/environment`: the non-empty ones,
    /// sorted by name.
    pub fn environment_file_vars(&self) -> Vec<(&'static str, &str)> {
        let mut vars: Vec<(&'static str, &str)> = (0..4)
            .filter_map(|i| {
                let v = self.slot(i).as_deref()?;
                (!v.is_empty()).then_some((ENV_NAMES[i], v))
            })
            .collect();
        vars.sort_unstable();
        vars
    }

    fn slot(&self, i: usize) -> &Option<String> {
        match i {
            0 => &self.public_ipv4,
            1 => &self.private_ipv4,
            2 => &self.public_ipv6,
            _ => &self.private_ipv6,
        }
    }

    fn slot_mut(&mut self, i: usize) -> &mut Option<String> {
        match i {
            0 => &mut self.public_ipv4,
            1 => &mut self.private_ipv4,
            2 => &mut self.public_ipv6,
            _ => &mut self.private_ipv6,
        }
    }
}

/// Replaces the address variables in `user_data` (any bytes: scripts need not be UTF-8).
pub fn substitute(user_data: &[u8], addresses: &Addresses) -> Vec<u8> {
    let mut data = user_data.to_vec();
    for (i, var) in VARIABLES.iter().enumerate() {
        let value = addresses.slot(i).as_deref().unwrap_or("");
        data = replace_unescaped(&data, var.as_bytes(), value.as_bytes());
        data = unescape(&data, var.as_bytes());
    }
    data
}

/// Step 1: `var` → `value` unless preceded by `\` or by the end of the previous replacement.
fn replace_unescaped(data: &[u8], var: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut copied = 0; // data[..copied] is in `out`
    let mut last_end = 0; // end of the previous match, preceding character included
    let mut p = 0;
    while let Some(off) = find(&data[p..], var) {
        let at = p + off;
        let matches = if at == 0 {
            true
        } else {
            at > last_end && data[at - 1] != b'\\'
        };
        if matches {
            out.extend_from_slice(&data[copied..at]);
            out.extend_from_slice(value);
            copied = at + var.len();
            last_end = copied;
        }
        p = at + 1;
    }
    out.extend_from_slice(&data[copied..]);
    out
}

/// Step 2: `\var` → `var`.
fn unescape(data: &[u8], var: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\\' && data[i + 1..].starts_with(var) {
            out.extend_from_slice(var);
            i += 1 + var.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private(v: &str) -> Addresses {
        Addresses {
            private_ipv4: Some(v.into()),
            ..Addresses::default()
        }
    }

    #[test]
    fn quirks_of_the_original() {
        let a = private("10.0.0.1");
        let sub = |s: &str| String::from_utf8(substitute(s.as_bytes(), &a)).expect("utf-8");
        assert_eq!(sub("$private_ipv4$private_ipv4"), "10.0.0.1$private_ipv4");
        assert_eq!(sub("x$private_ipv4 $private_ipv4"), "x10.0.0.1 10.0.0.1");
        assert_eq!(
            sub("$private_ipv4x ${private_ipv4}"),
            "10.0.0.1x ${private_ipv4}"
        );
        assert_eq!(sub(r"\$private_ipv4"), "$private_ipv4");
        assert_eq!(sub(r"\\$private_ipv4"), r"\$private_ipv4");
        assert_eq!(sub("é$private_ipv4"), "é10.0.0.1");
        assert_eq!(sub("$public_ipv4|"), "|");
    }

    #[test]
    fn addresses_from_env_and_metadata() {
        let env = Addresses::from_env([("COREOS_PRIVATE_IPV4", "5.6.7.8"), ("HOME", "/root")]);
        assert_eq!(env, private("5.6.7.8"));
        let merged = private("127.0.0.1").or(Addresses {
            public_ipv4: Some("1.2.3.4".into()),
            private_ipv4: Some("5.6.7.8".into()),
            ..Addresses::default()
        });
        assert_eq!(merged.private_ipv4.as_deref(), Some("127.0.0.1"));
        assert_eq!(merged.public_ipv4.as_deref(), Some("1.2.3.4"));
        assert!(Addresses::default().environment_file_vars().is_empty());
    }
}
