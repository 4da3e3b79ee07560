//! Per-instruction argument checks, with Docker's messages, so that a file which parses
//! is one Docker would accept. Errors are bare messages; the parser adds the line.

use crate::heredoc::parse_marker;
use crate::{Args, Instruction, Line, words};

type Check<T> = std::result::Result<T, String>;

/// Checks one known instruction's arguments (flags were checked when it was parsed).
pub(crate) fn check(line: &Line, escape: char) -> Check<()> {
    let ins = &line.instruction;
    let kw = ins.keyword.as_str();
    let text = ins.shell_text();
    let at_least_one = || Err(format!("{kw} requires at least one argument"));
    match kw {
        "ADD" | "COPY" => {
            let args = ins.arg_words();
            if args.len() < 2 {
                return Err(format!(
                    "{kw} requires at least two arguments, but only one was provided. Destination could not be determined"
                ));
            }
            if args.last().and_then(|d| parse_marker(d)).is_some() {
                return Err(format!("{kw} cannot accept a heredoc as a destination"));
            }
            // `--from` names a stage or image literally: the stage graph is known
            // before any variable is, so Docker refuses anything expansion would change.
            if let Some(from) = ins.flag("from")
                && crate::expand::expand(from, &|_| None, escape).ok().as_deref() != Some(from)
            {
                return Err("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround".into());
            }
        }
        "ARG" => {
            words::parse_arg_raw(&text, escape).map_err(|e| e.to_string())?;
        }
        "ENV" | "LABEL" => {
            words::parse_pairs_raw(&text, escape, kw).map_err(|e| e.to_string())?;
        }
        "FROM" => {
            from_args(ins)?;
        }
        "HEALTHCHECK" => {
            crate::changes::healthcheck(ins).map_err(|e| e.to_string())?;
        }
        "MAINTAINER" | "STOPSIGNAL" | "USER" | "WORKDIR" if text.trim().is_empty() => {
            return Err(format!("{kw} requires exactly one argument"));
        }
        "EXPOSE" if text.trim().is_empty() => return at_least_one(),
        "ONBUILD" => {
            let trigger = text.split_whitespace().next().map(str::to_ascii_uppercase);
            match trigger.as_deref() {
                None => return at_least_one(),
                Some("ONBUILD") => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
                Some(t @ ("FROM" | "MAINTAINER")) => return Err(format!("{t} isn't allowed as an ONBUILD trigger")),
                Some(_) => {}
            }
        }
        "SHELL" => match &ins.args {
            Args::Exec(v) if !v.is_empty() => {}
            Args::Shell(s) if !s.is_empty() => return Err("SHELL requires the arguments to be in JSON form".into()),
            _ => return at_least_one(),
        },
        "VOLUME" => {
            let args = ins.arg_words();
            if args.is_empty() {
                return at_least_one();
            }
            if args.iter().any(|v| v.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
        }
        _ => {}
    }
    Ok(())
}

/// `FROM [--platform=…] image [AS name]`: the image (unexpanded) and the stage name,
/// lowercased, which must look like `[a-z][a-z0-9-_.]*`.
pub(crate) fn from_args(ins: &Instruction) -> Check<(String, Option<String>)> {
    let args = ins.arg_words();
    match args.as_slice() {
        [base] => Ok((base.clone(), None)),
        [base, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
            let lower = name.to_ascii_lowercase();
            let mut chars = lower.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(format!(
                    "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                ));
            }
            Ok((base.clone(), Some(lower)))
        }
        _ => Err("FROM requires either one or three arguments".into()),
    }
}
