//! `/usr/lib/os-release` (os-release(5)): the builder writes it from the spec's `os:`, the
//! update engine reads `ID` and `VERSION_ID` back (which OS, which version is booted), and the
//! config agent and the banner read it on the machine. `RELEASE_CHANNEL` is Container Linux's
//! name for the channel. Container Linux's other identity fields are there too, for the tools
//! and scripts that read them: `BUILD_ID` (the build's date, from `SOURCE_DATE_EPOCH`),
//! `COREOS_BOARD`, and the files `/usr/share/coreos/release` and `lsb-release`.

use std::collections::BTreeMap;

/// Field names.
pub const ID: &str = "ID";
pub const VERSION_ID: &str = "VERSION_ID";
pub const RELEASE_CHANNEL: &str = "RELEASE_CHANNEL";
pub const BUILD_ID: &str = "BUILD_ID";
/// Container Linux's board name for x86-64 images (`COREOS_BOARD`, `COREOS_RELEASE_BOARD`).
pub const BOARD: &str = "amd64-usr";

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
    /// `BUILD_ID`: Container Linux's `YYYY-MM-DD-HHMM` of the build ([`build_id`]).
    pub build_id: String,
}

/// `BUILD_ID` for a build at `unix` seconds (its `SOURCE_DATE_EPOCH`): `YYYY-MM-DD-HHMM` UTC, the
/// shape Container Linux used. Pure.
pub fn build_id(unix: u64) -> String {
    let t = util::time::Utc::from_unix(unix);
    format!(
        "{:04}-{:02}-{:02}-{:02}{:02}",
        t.year, t.month, t.day, t.hour, t.minute
    )
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
            "NAME=\"{name}\"\nID={id}\n{id_like}VERSION={v}\nVERSION_ID={v}\n{BUILD_ID}={b}\nPRETTY_NAME=\"{name} {v} ({ch})\"\n{RELEASE_CHANNEL}={ch}\nCOREOS_BOARD=\"{BOARD}\"\n",
            name = self.quoted_name(),
            id = self.id,
            v = self.version,
            b = self.build_id,
            ch = self.channel,
        )
    }

    /// `/usr/share/coreos/release`. Pure.
    pub fn coreos_release(&self) -> String {
        format!(
            "COREOS_RELEASE_VERSION={}\nCOREOS_RELEASE_BOARD={BOARD}\n",
            self.version
        )
    }

    /// `/usr/share/coreos/lsb-release`. Pure.
    pub fn lsb_release(&self) -> String {
        format!(
            "DISTRIB_ID=\"{name}\"\nDISTRIB_RELEASE={v}\nDISTRIB_CODENAME=\"{ch}\"\nDISTRIB_DESCRIPTION=\"{name} {v} ({ch})\"\n",
            name = self.quoted_name(),
            v = self.version,
            ch = self.channel,
        )
    }

    /// The name as it can stand between double quotes.
    fn quoted_name(&self) -> String {
        self.name.replace('"', "'")
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
            build_id: build_id(1_767_225_600 + 3_600 * 13 + 60 * 7),
        };
        let text = os.render();
        assert_eq!(
            text,
            "NAME=\"Container 'Host'\"\nID=container-host\nID_LIKE=coreos\nVERSION=1.0.0\nVERSION_ID=1.0.0\nBUILD_ID=2026-01-01-1307\nPRETTY_NAME=\"Container 'Host' 1.0.0 (alpha)\"\nRELEASE_CHANNEL=alpha\nCOREOS_BOARD=\"amd64-usr\"\n"
        );
        assert_eq!(
            os.coreos_release(),
            "COREOS_RELEASE_VERSION=1.0.0\nCOREOS_RELEASE_BOARD=amd64-usr\n"
        );
        let lsb = parse(&os.lsb_release());
        assert_eq!(lsb["DISTRIB_ID"], "Container 'Host'");
        assert_eq!(lsb["DISTRIB_RELEASE"], "1.0.0");
        assert_eq!(lsb["DISTRIB_DESCRIPTION"], "Container 'Host' 1.0.0 (alpha)");
        let fields = parse(&text);
        assert_eq!(fields[ID], "container-host");
        assert_eq!(fields[VERSION_ID], "1.0.0");
        assert_eq!(fields[RELEASE_CHANNEL], "alpha");
        assert_eq!(fields[BUILD_ID], "2026-01-01-1307");
        assert_eq!(fields["COREOS_BOARD"], BOARD);
        assert_eq!(fields["PRETTY_NAME"], "Container 'Host' 1.0.0 (alpha)");
        let bare = OsRelease {
            id_like: Vec::new(),
            ..os
        };
        assert!(!bare.render().contains("ID_LIKE"));
    }
}
