//! One Dockerfile instruction.

use crate::{DockerfileError, Result, flags};

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
    /// `--name=value` flags before the arguments (`--from=build`, `--chown=1:1`), checked
    /// and normalized as [`crate::flags`] describes.
    pub flags: Vec<(String, String)>,
    pub args: Args,
    /// The line as written (continuations joined), for messages and history.
    pub original: String,
}

/// Instructions whose arguments may be given in exec (JSON) form.
const JSON_FORM: &[&str] = &["CMD", "ENTRYPOINT", "RUN", "SHELL", "VOLUME", "COPY", "ADD", "HEALTHCHECK"];

impl Instruction {
    /// Parses one logical line (continuations already joined) with the default escape `\`.
    pub fn parse(line: &str) -> Result<Instruction> {
        Self::parse_with_escape(line, '\\')
    }

    /// Parses one logical line; `escape` is the Dockerfile's escape character, which
    /// matters for quoting inside flag values.
    pub fn parse_with_escape(line: &str, escape: char) -> Result<Instruction> {
        let original = line.trim().to_string();
        let (kw, rest) = match original.find(char::is_whitespace) {
            Some(i) => (&original[..i], original[i..].trim_start()),
            None => (original.as_str(), ""),
        };
        if kw.is_empty() {
            return Err(DockerfileError::Syntax("empty instruction".into()));
        }
        let keyword = kw.to_ascii_uppercase();
        let (flag_words, rest) = flags::extract(rest, escape);
        let flags = flags::check(&keyword, &flag_words)?;
        let rest = rest.trim();
        let args = match JSON_FORM.contains(&keyword.as_str()).then(|| json_array(rest)).flatten() {
            Some(v) => Args::Exec(v?),
            None => Args::Shell(rest.to_string()),
        };
        Ok(Instruction { keyword, flags, args, original })
    }

    /// The last value of a flag (bool flags read `"true"`/`"false"`).
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable flag (`--mount`, `--exclude`), in order.
    pub fn flag_values(&self, name: &str) -> Vec<&str> {
        self.flags.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The keyword as the user wrote it, for messages (`unknown instruction: FORM`).
    pub fn keyword_as_written(&self) -> &str {
        self.original.split(char::is_whitespace).next().unwrap_or("")
    }

    /// The argument text in shell form (exec-form words joined by spaces).
    pub fn shell_text(&self) -> String {
        match &self.args {
            Args::Shell(s) => s.clone(),
            Args::Exec(v) => v.join(" "),
        }
    }

    /// The arguments as Docker's parser lists them for the instructions whose shell form
    /// is plain whitespace-separated words (ADD, COPY, VOLUME, EXPOSE, FROM): exec-form
    /// elements, or the shell text split on whitespace with quotes left in place (the
    /// builder's expansion removes them, see [`crate::expand`]).
    pub fn arg_words(&self) -> Vec<String> {
        match &self.args {
            Args::Exec(v) => v.clone(),
            Args::Shell(s) => s.split_whitespace().map(str::to_string).collect(),
        }
    }
}

/// `Some` if `rest` is a JSON array: of strings it is the exec form, with any other
/// element it is Docker's error. Anything that is not a JSON array is the shell form.
pub(crate) fn json_array(rest: &str) -> Option<Result<Vec<String>>> {
    if !rest.starts_with('[') {
        return None;
    }
    let serde_json::Value::Array(items) = serde_json::from_str(rest).ok()? else {
        return None;
    };
    Some(
        items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(DockerfileError::Syntax(
                    "when using JSON array syntax, arrays must be comprised of strings only".into(),
                )),
            })
            .collect(),
    )
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
        assert_eq!(i.arg_words(), vec!["/a", "/b"]);
    }

    #[test]
    fn flags_are_checked_for_every_instruction() {
        // Docker reads leading --words as flags on any instruction, so these are errors.
        assert!(Instruction::parse("ENV --x=1").is_err());
        assert!(Instruction::parse("CMD --help").is_err());
        // ...unless `--` ends the flags.
        let i = Instruction::parse("CMD -- --help").unwrap();
        assert_eq!(i.args, Args::Shell("--help".into()));
        // Unknown keywords are left for the file parser to reject.
        assert_eq!(Instruction::parse("FORM --x y").unwrap().flags, vec![("x".to_string(), String::new())]);
    }

    #[test]
    fn json_with_non_strings_is_an_error() {
        assert!(Instruction::parse("RUN [1, 2]").is_err());
        assert_eq!(Instruction::parse("RUN []").unwrap().args, Args::Exec(vec![]));
        assert_eq!(Instruction::parse("RUN {\"a\":1}").unwrap().args, Args::Shell("{\"a\":1}".into()));
    }
}
