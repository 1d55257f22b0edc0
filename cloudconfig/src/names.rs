//! What the agent accepts as a unit name, a drop-in name and a `write_files` path: one
//! definition, read by the validator (which says so on the line, before the machine boots) and
//! by the agent (which refuses the action at apply time).

/// Why `name` cannot be a unit file name, if it cannot: a file name (no `/`, NUL or line
/// breaks, not hidden) of at most 255 bytes with a suffix (`foo.service`).
pub fn unit_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > 255 {
        Some("is longer than 255 bytes")
    } else if name.contains(['/', '\0', '\n', '\r']) {
        Some("is not a file name (it has a /, NUL or line break)")
    } else if name.starts_with('.') {
        Some("starts with a dot")
    } else if !name.contains('.') {
        Some("has no suffix (like .service)")
    } else {
        None
    }
}

/// Why `name` cannot be a drop-in file name: a unit-like file name ending in `.conf`.
pub fn drop_in_name_problem(name: &str) -> Option<&'static str> {
    unit_name_problem(name).or((!name.ends_with(".conf")).then_some("does not end in .conf"))
}

/// Why `path` cannot be a `write_files` path: empty, NUL, a `..` component (it could leave the
/// root the agent writes under), or naming no file (`/`).
pub fn write_path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() || path.contains('\0') {
        Some("is empty or contains NUL")
    } else if path.split('/').any(|c| c == "..") {
        Some("contains ..")
    } else if path.split('/').all(|c| c.is_empty() || c == ".") {
        Some("names no file")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        for ok in [
            "etcd.service",
            "50-x.conf",
            "docker-tcp.socket",
            "a@b.service",
        ] {
            assert_eq!(unit_name_problem(ok), None, "{ok}");
        }
        assert_eq!(drop_in_name_problem("50-x.conf"), None);
        assert!(drop_in_name_problem("50-x.service").is_some());
        for bad in [
            "",
            ".hidden.service",
            "noext",
            "../x.service",
            "a/b.service",
            "x\n.service",
        ] {
            assert!(unit_name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(unit_name_problem(&"x".repeat(256)).is_some());
        for ok in ["/etc/x", "etc/x", "/etc/./x"] {
            assert_eq!(write_path_problem(ok), None, "{ok}");
        }
        for bad in ["", "/", "/./", "/etc/../../x", "../x", "/etc/x/..", "a\0b"] {
            assert!(write_path_problem(bad).is_some(), "{bad:?}");
        }
    }
}
