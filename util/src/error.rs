//! Error chains as text. Library errors often repeat their source's text in their own message
//! (`reading x: No such file`, caused by `No such file`): a cause already contained in the text
//! so far is left out, so each fact is printed once.

use std::error::Error;

/// `error: cause: cause` on one line, each cause once (for logs and wrapped messages).
pub fn chain(e: &dyn Error) -> String {
    causes(e).join(": ")
}

/// The report a binary prints on failure: `error: …`, then `  caused by: …` a line, each cause
/// once. Ends with a newline.
pub fn report(e: &dyn Error) -> String {
    let mut out = String::new();
    for (i, text) in causes(e).iter().enumerate() {
        let prefix = if i == 0 { "error: " } else { "  caused by: " };
        out.push_str(prefix);
        out.push_str(text);
        out.push('\n');
    }
    out
}

/// The error's text and each source's, leaving out a cause whose text is already part of an
/// earlier one.
fn causes(e: &dyn Error) -> Vec<String> {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = c.source();
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for E {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    fn e(texts: &[&'static str]) -> E {
        let mut cur = None;
        for t in texts.iter().rev() {
            cur = Some(Box::new(E(t, cur)));
        }
        *cur.unwrap()
    }

    #[test]
    fn causes_once() {
        let err = e(&["reading x: gone", "gone", "io"]);
        assert_eq!(chain(&err), "reading x: gone: io");
        assert_eq!(report(&err), "error: reading x: gone\n  caused by: io\n");
        assert_eq!(report(&e(&["alone"])), "error: alone\n");
    }
}
