//! One Dockerfile instruction.

use crate::{DockerfileError, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Args {
    /// `["executable", "arg"]`
    Exec(Vec<String>),
    /// Everything after the keyword and flags, as written.
    Shell(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// Upper-cased keyword (`RUN`, `COPY`…).
    pub keyword: String,
    /// `--name=value` flags before the arguments (`--from=build`, `--chown=1:1`).
    pub flags: Vec<(String, String)>,
    pub args: Args,
    /// The line as written, for messages and history.
    pub original: String,
}

/// Instructions whose arguments may be given in exec (JSON) form.
const JSON_FORM: &[&str] = &["CMD", "ENTRYPOINT", "RUN", "SHELL", "VOLUME", "COPY", "ADD", "HEALTHCHECK"];
/// Instructions that take `--flags`.
const FLAGGED: &[&str] = &["FROM", "COPY", "ADD", "RUN", "HEALTHCHECK"];

impl Instruction {
    /// Parses one logical line (continuations already joined).
    pub fn parse(line: &str) -> Result<Instruction> {
        let original = line.trim().to_string();
        let (kw, rest) = match original.find(char::is_whitespace) {
            Some(i) => (&original[..i], original[i..].trim_start()),
            None => (original.as_str(), ""),
        };
        if kw.is_empty() {
            return Err(DockerfileError::Syntax("empty instruction".into()));
        }
        let keyword = kw.to_ascii_uppercase();
        let mut rest = rest.to_string();
        let mut flags = Vec::new();
        if FLAGGED.contains(&keyword.as_str()) {
            while rest.starts_with("--") {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                let flag = &rest[2..end];
                let (k, v) = flag.split_once('=').unwrap_or((flag, ""));
                flags.push((k.to_string(), v.to_string()));
                rest = rest[end..].trim_start().to_string();
            }
        }
        let args = if JSON_FORM.contains(&keyword.as_str()) && rest.starts_with('[') {
            match serde_json::from_str::<Vec<String>>(&rest) {
                Ok(v) => Args::Exec(v),
                // Not valid JSON: Docker falls back to the shell form.
                Err(_) => Args::Shell(rest),
            }
        } else {
            Args::Shell(rest)
        };
        Ok(Instruction { keyword, flags, args, original })
    }

    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The argument text in shell form, or an error naming the instruction if it was JSON.
    pub fn shell_text(&self) -> String {
        match &self.args {
            Args::Shell(s) => s.clone(),
            Args::Exec(v) => v.join(" "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let i = Instruction::parse(r#"cmd ["echo", "hi"]"#).unwrap();
        assert_eq!(i.keyword, "CMD");
        assert_eq!(i.args, Args::Exec(vec!["echo".into(), "hi".into()]));
        let i = Instruction::parse("CMD echo hi").unwrap();
        assert_eq!(i.args, Args::Shell("echo hi".into()));
        let i = Instruction::parse("CMD [not json").unwrap();
        assert_eq!(i.args, Args::Shell("[not json".into()));
        let i = Instruction::parse("COPY --from=build --chown=1:2 /a /b").unwrap();
        assert_eq!(i.flag("from"), Some("build"));
        assert_eq!(i.flag("chown"), Some("1:2"));
        assert_eq!(i.args, Args::Shell("/a /b".into()));
        let i = Instruction::parse("ENV --x=1").unwrap();
        assert!(i.flags.is_empty());
    }
}
