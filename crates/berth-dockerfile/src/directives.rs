//! Parser directives: `# escape=``, `# syntax=…`, `# check=…` at the top of a Dockerfile.
//!
//! Docker's rules, which this follows:
//!
//! - Directives are only looked for until the first line that is not one: an
//!   instruction, a blank line, or any other comment ends the search, and a
//!   directive-looking comment after that is an ordinary comment.
//! - The form is `#` + optional space + `name` + optional space + `=` + optional space +
//!   a non-empty value; names are case-insensitive. Unknown names (`# foo=bar`) are plain
//!   comments and also end the search. No line continuation.
//! - Each directive may appear once (`only one escape parser directive can be used`).
//! - `escape` is `\` (the default) or `` ` ``; it is both the escape character within
//!   lines and the line-continuation character.

/// The parser directives in effect for a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Directives {
    /// Escape and line-continuation character: `\` or `` ` ``.
    pub escape: char,
    /// `# syntax=` (a frontend image reference): berth's own frontend stands in for
    /// Docker's Dockerfile frontend 1.x, and [`check_syntax`] refuses any other.
    pub syntax: Option<String>,
    /// `# check=` (build-check configuration such as `skip=all;error=true`): recorded.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives { escape: '\\', syntax: None, check: None }
    }
}

/// Reads directives line by line while they last.
#[derive(Debug, Default)]
pub(crate) struct DirectiveScan {
    pub(crate) found: Directives,
    done: bool,
    seen: Vec<String>,
}

impl DirectiveScan {
    /// Offers a physical line (leading whitespace already trimmed). Returns whether it was
    /// a directive; errors are the message only, the caller adds the line number.
    pub(crate) fn offer(&mut self, line: &str) -> std::result::Result<bool, String> {
        if self.done {
            return Ok(false);
        }
        let Some((name, value)) = line.strip_prefix('#').and_then(directive) else {
            self.done = true;
            return Ok(false);
        };
        if !matches!(name.as_str(), "escape" | "syntax" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&name) {
            return Err(format!("only one {name} parser directive can be used"));
        }
        self.seen.push(name.clone());
        match name.as_str() {
            "escape" => {
                self.found.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    v => return Err(format!("invalid escape token '{v}' does not match ` or \\")),
                }
            }
            "syntax" => self.found.syntax = Some(value),
            _ => self.found.check = Some(value),
        }
        Ok(true)
    }
}

/// Checks a `# syntax=` reference: Docker's Dockerfile frontend 1.x (any spelling of
/// `docker/dockerfile` with a `1…`, `latest` or `labs` tag or none, with or without a
/// digest) is what berth implements itself; any other frontend image is an error naming
/// it, since berth does not run frontend images.
pub fn check_syntax(reference: &str) -> std::result::Result<(), String> {
    let r = reference.trim();
    let without_digest = r.split_once('@').map_or(r, |(name, _)| name);
    let (name, tag) = match without_digest.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (without_digest, ""),
    };
    let name = ["docker.io/", "index.docker.io/", "registry-1.docker.io/"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    let name = name.strip_prefix("library/").unwrap_or(name);
    let tag_ok = tag.is_empty()
        || tag == "latest"
        || tag == "labs"
        || tag == "experimental"
        || tag == "1"
        || tag.starts_with("1.")
        || tag.starts_with("1-");
    if name == "docker/dockerfile" && tag_ok {
        return Ok(());
    }
    Err(format!(
        "unsupported frontend {r:?} in the # syntax directive: berth builds with its built-in Dockerfile frontend (docker/dockerfile:1) and does not run other frontend images"
    ))
}

/// `  name = value  ` after the `#`, as `(lowercased name, value)`.
fn directive(s: &str) -> Option<(String, String)> {
    let s = s.trim_start();
    let name_len = s.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(s.len());
    let (name, rest) = s.split_at(name_len);
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_frontend_is_any_dockerfile_1x() {
        let digest = format!("@sha256:{}", "a".repeat(64));
        for ok in [
            "docker/dockerfile:1".to_string(),
            "docker/dockerfile:1.7".into(),
            "docker/dockerfile:1.7.1-labs".into(),
            "docker/dockerfile".into(),
            "docker.io/docker/dockerfile:1.4".into(),
            format!("docker/dockerfile:1{digest}"),
            format!("docker.io/docker/dockerfile:1.9{digest}"),
        ] {
            assert_eq!(check_syntax(&ok), Ok(()), "{ok}");
        }
        for bad in [
            "example.com/my/frontend:2",
            "docker/dockerfile:0.9",
            "docker/dockerfile-upstream:master",
            "tonistiigi/x:1",
        ] {
            let e = check_syntax(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains("unsupported frontend"), "{e}");
        }
    }

    #[test]
    fn recognizes_directives_until_anything_else() {
        let mut d = DirectiveScan::default();
        assert_eq!(d.offer("# Escape = `"), Ok(true));
        assert_eq!(d.offer("#syntax=docker/dockerfile:1"), Ok(true));
        assert_eq!(d.offer("# check=skip=all;error=true"), Ok(true));
        assert_eq!(d.offer("# escape=\\"), Err("only one escape parser directive can be used".into()));
        assert_eq!(d.found.escape, '`');
        assert_eq!(d.found.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.found.check.as_deref(), Some("skip=all;error=true"));

        let mut d = DirectiveScan::default();
        assert_eq!(d.offer("# unknown=1"), Ok(false));
        assert_eq!(d.offer("# escape=`"), Ok(false), "search ended at the unknown directive");
        assert_eq!(d.found.escape, '\\');

        let mut d = DirectiveScan::default();
        assert_eq!(d.offer("# escape=x"), Err("invalid escape token 'x' does not match ` or \\".into()));
        assert_eq!(d.offer("# escape"), Ok(false));
    }
}
