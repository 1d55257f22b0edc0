//! `KEY=VALUE` files the agent merges keys into: `/etc/update-engine/update.conf` (its syntax
//! and keys are `contract::update_conf`'s; the update engine reads it) and `/etc/environment`. As upstream's
//! `WriteEnvFile`/update.conf writer: lines of other keys, comments and blank lines stay as
//! they are; a key that is set replaces its first line (later duplicates are dropped); keys not
//! present are appended in the order given. Pure.

/// Why a value cannot go into a `KEY=VALUE` line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfError {
    #[error("{key}: a value must be one line")]
    Multiline { key: String },
    #[error("{key:?} is not a variable name")]
    BadKey { key: String },
}

/// `text` with `set` keys set and `unset` keys removed.
pub fn merge(text: &str, set: &[(String, String)], unset: &[String]) -> Result<String, ConfError> {
    for (k, v) in set {
        if !contract::update_conf::valid_key(k) {
            return Err(ConfError::BadKey { key: k.clone() });
        }
        if v.contains(['\n', '\r']) {
            return Err(ConfError::Multiline { key: k.clone() });
        }
    }
    let mut written = vec![false; set.len()];
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        let key = line_key(line);
        if key.is_some_and(|k| unset.iter().any(|u| u == k)) {
            continue;
        }
        match key.and_then(|k| set.iter().position(|(s, _)| s == k)) {
            Some(i) if written[i] => continue,
            Some(i) => {
                written[i] = true;
                out.push_str(&format!("{}={}\n", set[i].0, set[i].1));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (i, (k, v)) in set.iter().enumerate() {
        if !written[i] {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    Ok(out)
}

/// The key of a `KEY=VALUE` line (`export KEY=…` too); `None` for comments and other lines.
fn line_key(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.starts_with('#') {
        return None;
    }
    let t = t.strip_prefix("export ").unwrap_or(t);
    let (k, _) = t.split_once('=')?;
    Some(k.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn merge_keeps_other_lines() {
        let text = "# defaults\nGROUP=stable\nSERVER=http://a\n\nREBOOT_WINDOW_START=Sun 03:00\nGROUP=dup\nCHECK_INTERVAL=60";
        let out = merge(
            text,
            &pairs(&[("GROUP", "beta"), ("REBOOT_STRATEGY", "off")]),
            &["REBOOT_WINDOW_START".to_string()],
        )
        .unwrap();
        assert_eq!(
            out,
            "# defaults\nGROUP=beta\nSERVER=http://a\n\nCHECK_INTERVAL=60\nREBOOT_STRATEGY=off\n"
        );
        assert_eq!(merge("", &pairs(&[("A", "1")]), &[]).unwrap(), "A=1\n");
        assert_eq!(
            merge("export A=0\n", &pairs(&[("A", "1")]), &[]).unwrap(),
            "A=1\n"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert_eq!(
            merge("", &pairs(&[("A", "1\nB=2")]), &[]),
            Err(ConfError::Multiline { key: "A".into() })
        );
        assert_eq!(
            merge("", &pairs(&[("A B", "1")]), &[]),
            Err(ConfError::BadKey { key: "A B".into() })
        );
    }
}
