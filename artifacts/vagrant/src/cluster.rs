//! The cluster `Vagrantfile` and its `config.rb`, in the style of coreos-vagrant: written next
//! to the boxes, so `vagrant up` in the build directory starts `$num_instances` machines from
//! them (or from a channel's catalog, `$box_catalog_url`).
//!
//! The Vagrantfile is a data file of this crate (`data/cluster/Vagrantfile`), the same for every
//! build; `config.rb` is rendered from `data/cluster/config.rb.in` with the build's OS, channel
//! and box file names.

/// The cluster Vagrantfile.
pub const VAGRANTFILE: &str = include_str!("../data/cluster/Vagrantfile");
const CONFIG_TEMPLATE: &str = include_str!("../data/cluster/config.rb.in");

/// What `config.rb` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `os.id`.
    pub os_id: String,
    /// `os.name`.
    pub name: String,
    pub version: String,
    pub channel: String,
    /// (provider, box file name next to the Vagrantfile), e.g. `("libvirt", "x.box")`.
    pub box_files: Vec<(String, String)>,
}

/// `config.rb` for a build.
pub fn config_rb(c: &ClusterConfig) -> String {
    let boxes: String = c
        .box_files
        .iter()
        .map(|(provider, file)| format!("  {}: {},\n", provider, ruby_string(file)))
        .collect();
    CONFIG_TEMPLATE
        .replace("@@NAME@@", &one_line(&c.name))
        .replace("@@VERSION@@", &one_line(&c.version))
        .replace("@@CHANNEL@@", &ruby_inner(&c.channel))
        .replace("@@OS_ID@@", &ruby_inner(&c.os_id))
        .replace("@@BOX_FILES@@", &boxes)
}

/// A double-quoted Ruby string literal without interpolation.
fn ruby_string(s: &str) -> String {
    format!("\"{}\"", ruby_inner(s))
}

fn ruby_inner(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' | '"' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text for a comment line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_rb_names_the_build() {
        let text = config_rb(&ClusterConfig {
            os_id: "minimal".into(),
            name: "Minimal Linux".into(),
            version: "1.0.0".into(),
            channel: "alpha".into(),
            box_files: vec![
                ("libvirt".into(), "minimal_1.0.0_vagrant-libvirt.box".into()),
                (
                    "virtualbox".into(),
                    "minimal_1.0.0_vagrant-virtualbox.box".into(),
                ),
            ],
        });
        assert!(!text.contains("@@"), "{text}");
        for want in [
            "for Minimal Linux 1.0.0 (alpha);",
            "$os_id = \"minimal\"\n",
            "$update_channel = \"alpha\"\n",
            "$update_server = \"http://172.17.8.1:8080/\"\n",
            "$num_instances = 3\n",
            "$instance_name_prefix = \"core\"\n",
            "$vm_memory = 1024\n",
            "$vm_cpus = 1\n",
            "$box_files = {\n  libvirt: \"minimal_1.0.0_vagrant-libvirt.box\",\n  virtualbox: \"minimal_1.0.0_vagrant-virtualbox.box\",\n}\n",
        ] {
            assert!(text.contains(want), "{want:?} not in:\n{text}");
        }
    }

    #[test]
    fn vagrantfile_reads_config_and_user_data() {
        for want in [
            "require CONFIG if File.exist?(CONFIG)",
            "(1..$num_instances).each",
            "$instance_name_prefix",
            "$update_channel",
            "$vm_memory",
            "$vm_cpus",
            "/var/lib/coreos-vagrant/",
            "ERB.new(File.read(USER_DATA)",
            "initial_cluster:",
            "update_server: $update_server.to_s",
            "libvirt.serial type: \"file\"",
        ] {
            assert!(VAGRANTFILE.contains(want), "{want:?}");
        }
    }

    #[test]
    fn ruby_strings_do_not_interpolate() {
        assert_eq!(ruby_string("a\"#{x}\\"), "\"a\\\"\\#{x}\\\\\"");
    }
}
