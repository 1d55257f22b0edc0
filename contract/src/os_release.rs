//! `/usr/lib/os-release` (os-release(5)): the builder writes it from the spec's `os:`, the
//! update engine reads `ID` and `VERSION_ID` back (which OS, which version is booted), and the
//! config agent and the banner read it on the machine. `RELEASE_CHANNEL` is Container Linux's
//! name for the channel.

use std::collections::BTreeMap;

/// Field names.
pub const ID: &str = "ID";
pub const VERSION_ID: &str = "VERSION_ID";
pub const RELEASE_CHANNEL: &str = "RELEASE_CHANNEL";

/// What the image says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRelease {
    /// `NAME` (and the start of `PRETTY_NAME`).
    pub name: String,
    /// `ID`.
    pub id: String,
    /// `ID_LIKE` (space-separated; omitted when empty).
    pub id_like: Vec<String>,
    /// `VERSION` and `VERSION_ID`.
    pub version: String,
    /// `RELEASE_CHANNEL`.
    pub channel: String,
}

impl OsRelease {
    /// The file's text. Pure. Double quotes in the name become single quotes (it is quoted).
    pub fn render(&self) -> String {
        let id_like = if self.id_like.is_empty() {
            String::new()
        } else {
            format!("ID_LIKE={}\n", self.id_like.join(" "))
        };
        format!(
            "NAME=\"{name}\"\nID={id}\n{id_like}VERSION={v}\nVERSION_ID={v}\nPRETTY_NAME=\"{name} {v} ({ch})\"\n{RELEASE_CHANNEL}={ch}\n",
            name = self.name.replace('"', "'"),
            id = self.id,
            v = self.version,
            ch = self.channel,
        )
    }
}

/// The fields of os-release text, values unquoted (`"x"`, `'x'`); lines without `=` are
/// skipped. Pure.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse() {
        let os = OsRelease {
            name: "Container \"Host\"".into(),
            id: "container-host".into(),
            id_like: vec!["coreos".into()],
            version: "1.0.0".into(),
            channel: "alpha".into(),
        };
        let text = os.render();
        assert_eq!(
            text,
            "NAME=\"Container 'Host'\"\nID=container-host\nID_LIKE=coreos\nVERSION=1.0.0\nVERSION_ID=1.0.0\nPRETTY_NAME=\"Container 'Host' 1.0.0 (alpha)\"\nRELEASE_CHANNEL=alpha\n"
        );
        let fields = parse(&text);
        assert_eq!(fields[ID], "container-host");
        assert_eq!(fields[VERSION_ID], "1.0.0");
        assert_eq!(fields[RELEASE_CHANNEL], "alpha");
        assert_eq!(fields["PRETTY_NAME"], "Container 'Host' 1.0.0 (alpha)");
        let bare = OsRelease {
            id_like: Vec::new(),
            ..os
        };
        assert!(!bare.render().contains("ID_LIKE"));
    }
}
