//! Build checks: the lint rules of Docker's Dockerfile frontend (1.8 and later), which
//! `docker build` runs on every build and `docker build --check` runs instead of one.
//!
//! [`check`] looks at a parsed file and its text (for what the parser normalizes away:
//! keyword casing, `AS` names as written, blank lines inside continuations) and returns
//! the [`Warning`]s, each naming its [`Rule`] and the line. [`CheckConfig`] is the
//! `# check=` directive or the `BUILDKIT_DOCKERFILE_CHECK` build argument (which wins):
//! `skip=Rule1,Rule2` or `skip=all`, and `error=true`, which makes a build with
//! warnings fail before any step runs ([`violation_error`]).
//!
//! Rules that need the base image (`UndefinedVar`, `InvalidBaseImagePlatform`) or the
//! context (`CopyIgnoredFile`, experimental) are not checked here: this crate sees only
//! the file.

use std::collections::{BTreeMap, BTreeSet};

use crate::expand::expand_with_vars;
use crate::words::{parse_arg_raw, parse_pairs_raw};
use crate::{Args, Dockerfile};

/// One build check, as Docker names and documents it.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: &'static str,
    pub description: &'static str,
    pub url: &'static str,
}

macro_rules! rules {
    ($($id:ident $name:literal $slug:literal $desc:literal;)*) => {
        $(pub const $id: Rule = Rule {
            name: $name,
            description: $desc,
            url: concat!("https://docs.docker.com/go/dockerfile/rule/", $slug, "/"),
        };)*
        /// Every rule [`check`] knows, by name.
        pub const RULES: &[&Rule] = &[$(&$id),*];
    };
}

rules! {
    STAGE_NAME_CASING "StageNameCasing" "stage-name-casing" "Stage names should be lowercase";
    FROM_AS_CASING "FromAsCasing" "from-as-casing" "The 'as' keyword should match the case of the 'from' keyword";
    NO_EMPTY_CONTINUATION "NoEmptyContinuation" "no-empty-continuation"
        "Empty continuation lines will become errors in a future release";
    CONSISTENT_INSTRUCTION_CASING "ConsistentInstructionCasing" "consistent-instruction-casing"
        "All commands within the Dockerfile should use the same casing (either upper or lower)";
    DUPLICATE_STAGE_NAME "DuplicateStageName" "duplicate-stage-name" "Stage names should be unique";
    RESERVED_STAGE_NAME "ReservedStageName" "reserved-stage-name" "Reserved words should not be used as stage names";
    JSON_ARGS_RECOMMENDED "JSONArgsRecommended" "json-args-recommended"
        "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals";
    MAINTAINER_DEPRECATED "MaintainerDeprecated" "maintainer-deprecated"
        "The MAINTAINER instruction is deprecated, use a label instead to define an image author";
    UNDEFINED_ARG_IN_FROM "UndefinedArgInFrom" "undefined-arg-in-from" "FROM command must use declared ARGs";
    WORKDIR_RELATIVE_PATH "WorkdirRelativePath" "workdir-relative-path"
        "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes";
    MULTIPLE_INSTRUCTIONS_DISALLOWED "MultipleInstructionsDisallowed" "multiple-instructions-disallowed"
        "Multiple instructions of the same type should not be used in the same stage";
    LEGACY_KEY_VALUE_FORMAT "LegacyKeyValueFormat" "legacy-key-value-format"
        "Legacy key/value format with whitespace separator should not be used";
    REDUNDANT_TARGET_PLATFORM "RedundantTargetPlatform" "redundant-target-platform"
        "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior";
    SECRETS_USED_IN_ARG_OR_ENV "SecretsUsedInArgOrEnv" "secrets-used-in-arg-or-env"
        "Sensitive data should not be used in the ARG or ENV commands";
    INVALID_DEFAULT_ARG_IN_FROM "InvalidDefaultArgInFrom" "invalid-default-arg-in-from"
        "Default value for global ARG results in an empty or invalid base image name";
    FROM_PLATFORM_FLAG_CONST_DISALLOWED "FromPlatformFlagConstDisallowed" "from-platform-flag-const-disallowed"
        "FROM --platform flag should not use a constant value";
    UNDEFINED_VAR "UndefinedVar" "undefined-var" "Variables should be defined before their use";
}

/// The instructions whose words BuildKit expands against the stage's variables, where a name
/// neither set nor declared is reported ([`UNDEFINED_VAR`]); in RUN, CMD and ENTRYPOINT the
/// shell expands (or nothing does, in exec form).
const EXPANDED: &[&str] = &["ADD", "ARG", "COPY", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"];

/// One finding: the rule, what was found, and the 1-based line of the instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub rule: &'static Rule,
    pub message: String,
    pub line: usize,
}

/// Which checks run and what a finding does: `# check=skip=A,B;error=true`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    pub skip_all: bool,
    pub skip: BTreeSet<String>,
    /// Findings fail the build ([`violation_error`]) instead of being warnings.
    pub error: bool,
}

/// The build argument that overrides the file's `# check=` directive.
pub const CHECK_BUILD_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

impl CheckConfig {
    /// Parses `skip=…;error=…;experimental=…` (experimental rules are not implemented,
    /// so naming them changes nothing). Unknown keys and bad values are errors naming them.
    pub fn parse(s: &str) -> Result<CheckConfig, String> {
        let mut c = CheckConfig::default();
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("invalid check configuration {part:?}: expected key=value"))?;
            match key.trim().to_ascii_lowercase().as_str() {
                "skip" => {
                    for rule in value.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                        if rule.eq_ignore_ascii_case("all") {
                            c.skip_all = true;
                        } else {
                            c.skip.insert(rule.to_string());
                        }
                    }
                }
                "error" => {
                    c.error = match value.trim().to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        v => return Err(format!("invalid check configuration: error={v}: expected true or false")),
                    }
                }
                "experimental" => {}
                k => return Err(format!("invalid check configuration: unknown key {k:?}")),
            }
        }
        Ok(c)
    }

    /// The configuration for a build: the [`CHECK_BUILD_ARG`] build argument's value if
    /// given, else the file's directive.
    pub fn for_build(df: &Dockerfile, build_arg: Option<&str>) -> Result<CheckConfig, String> {
        match build_arg.or(df.directives.check.as_deref()) {
            Some(s) => CheckConfig::parse(s),
            None => Ok(CheckConfig::default()),
        }
    }

    fn runs(&self, rule: &Rule) -> bool {
        !self.skip_all && !self.skip.contains(rule.name)
    }
}

/// The error a build with findings and `error=true` fails with, as Docker words it.
pub fn violation_error(warnings: &[Warning]) -> String {
    let names: BTreeSet<&str> = warnings.iter().map(|w| w.rule.name).collect();
    format!("lint violation found for rules: {}", names.into_iter().collect::<Vec<_>>().join(", "))
}

/// The short list a build prints (Docker's form; berth prints it before the first step).
pub fn summary(warnings: &[Warning]) -> String {
    let n = warnings.len();
    let mut s = format!(" {n} warning{} found (use docker --debug to expand):\n", if n == 1 { "" } else { "s" });
    for w in warnings {
        s.push_str(&format!(" - {}: {} (line {})\n", w.rule.name, w.message, w.line));
    }
    s
}

/// The long form `build --check` prints: per finding, the rule and its documentation,
/// the message, and the file around the line.
pub fn detailed(warnings: &[Warning], text: &str, file_name: &str) -> String {
    let lines: Vec<&str> = text.strip_prefix('\u{feff}').unwrap_or(text).lines().collect();
    let n = warnings.len();
    let mut s = if n == 0 {
        "Check complete, no warnings found.\n".to_string()
    } else {
        format!("Check complete, {n} warning{} been found!\n", if n == 1 { " has" } else { "s have" })
    };
    for w in warnings {
        s.push_str(&format!("\nWARNING: {} - {}\n{}\n{file_name}:{}\n", w.rule.name, w.rule.url, w.message, w.line));
        s.push_str("--------------------\n");
        let first = w.line.saturating_sub(2).max(1);
        let last = (w.line + 1).min(lines.len());
        for i in first..=last {
            let marker = if i == w.line { ">>>" } else { "   " };
            s.push_str(format!("{i:>4} | {marker} {}", lines.get(i - 1).copied().unwrap_or("")).trim_end());
            s.push('\n');
        }
        s.push_str("--------------------\n");
    }
    s
}

/// The ARGs the platform gives every build, usable in FROM without a declaration.
const PLATFORM_ARGS: &[&str] = &[
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
];

/// Runs every check the configuration leaves on; findings in file order. Variables are
/// checked ([`UNDEFINED_VAR`]) in stages whose base's environment is known: `scratch` and
/// earlier stages; [`check_with_images`] knows images too.
pub fn check(df: &Dockerfile, cfg: &CheckConfig) -> Vec<Warning> {
    check_with_images(df, cfg, &|_| None)
}

/// [`check`], with `image_env` giving the variable names an image's configuration sets (by
/// the base's name as FROM names it, global ARGs' defaults applied), or `None` where the
/// image is not known: its stage's variables are then not checked.
pub fn check_with_images(
    df: &Dockerfile,
    cfg: &CheckConfig,
    image_env: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut warn = |rule: &'static Rule, message: String, line: usize| {
        if cfg.runs(rule) {
            out.push(Warning { rule, message, line });
        }
    };
    let escape = df.directives.escape;

    // Keyword casing: every instruction, FROMs included, as written.
    let mut keywords: Vec<(String, usize)> = Vec::new();
    for l in &df.args_before_from {
        keywords.push((l.instruction.keyword_as_written().to_string(), l.line_no));
    }
    let froms: Vec<FromLine> = df.stages.iter().map(|s| FromLine::read(&s.from.instruction.original)).collect();
    for (stage, from) in df.stages.iter().zip(&froms) {
        keywords.push((from.keyword.clone(), stage.from.line_no));
        for l in &stage.instructions {
            keywords.push((l.instruction.keyword_as_written().to_string(), l.line_no));
        }
    }
    let upper = keywords.iter().filter(|(k, _)| *k == k.to_ascii_uppercase()).count();
    let lower = keywords.iter().filter(|(k, _)| *k == k.to_ascii_lowercase()).count();
    let majority_upper = upper >= lower;
    for (k, line) in &keywords {
        let fits = if majority_upper { *k == k.to_ascii_uppercase() } else { *k == k.to_ascii_lowercase() };
        if !fits {
            let casing = if majority_upper { "uppercase" } else { "lowercase" };
            warn(
                &CONSISTENT_INSTRUCTION_CASING,
                format!("Command '{k}' should match the case of the command majority ({casing})"),
                *line,
            );
        }
    }

    // Global ARGs: what FROM may use, and their defaults.
    let mut globals: BTreeMap<String, Option<String>> = BTreeMap::new();
    for l in &df.args_before_from {
        for (name, default) in parse_arg_raw(&l.instruction.shell_text(), escape).unwrap_or_default() {
            if looks_secret(&name) {
                warn(
                    &SECRETS_USED_IN_ARG_OR_ENV,
                    format!("Do not use ARG or ENV instructions for sensitive data (ARG {name:?})"),
                    l.line_no,
                );
            }
            globals.insert(name, default);
        }
    }

    let mut names_seen: BTreeSet<String> = BTreeSet::new();
    // Per stage name: whether it set an absolute WORKDIR (a later stage built on it inherits it).
    let mut absolute_workdir: BTreeMap<String, bool> = BTreeMap::new();
    // Per stage name: the variables set at its end, if known (a later stage inherits them).
    let mut stage_env: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    for (stage, from) in df.stages.iter().zip(&froms) {
        let line = stage.from.line_no;
        if let Some((as_kw, name)) = &from.alias {
            if *name != name.to_ascii_lowercase() {
                warn(&STAGE_NAME_CASING, format!("Stage name '{name}' should be lowercase"), line);
            }
            let from_upper = from.keyword == from.keyword.to_ascii_uppercase();
            let from_lower = from.keyword == from.keyword.to_ascii_lowercase();
            if (from_upper && *as_kw != as_kw.to_ascii_uppercase())
                || (from_lower && *as_kw != as_kw.to_ascii_lowercase())
            {
                warn(&FROM_AS_CASING, format!("'{as_kw}' and '{}' keywords' casing do not match", from.keyword), line);
            }
            let lower = name.to_ascii_lowercase();
            if lower == "scratch" || lower == "context" {
                warn(
                    &RESERVED_STAGE_NAME,
                    format!("Stage name should not use the same name as reserved stage {lower:?}"),
                    line,
                );
            }
            if !names_seen.insert(lower.clone()) {
                warn(
                    &DUPLICATE_STAGE_NAME,
                    format!("Duplicate stage name {lower:?}, stage names should be unique"),
                    line,
                );
            }
        }

        // FROM's variables: declared globally, or the platform's.
        let global_env = |n: &str| globals.get(n).cloned().flatten();
        let (base, mut used) = expand_with_vars(&stage.base, &global_env, escape).unwrap_or_default();
        if let Some(Ok((_, vars))) = stage.platform.as_deref().map(|p| expand_with_vars(p, &global_env, escape)) {
            used.extend(vars);
        }
        for v in &used {
            if !globals.contains_key(v) && !PLATFORM_ARGS.contains(&v.as_str()) {
                let suggest =
                    crate::suggest::closest(v, globals.keys().map(String::as_str).chain(PLATFORM_ARGS.iter().copied()));
                let hint = suggest.map(|s| format!(" (did you mean {s}?)")).unwrap_or_default();
                warn(&UNDEFINED_ARG_IN_FROM, format!("FROM argument '{v}' is not declared{hint}"), line);
            }
        }
        if !used.is_empty() && used.iter().all(|v| globals.contains_key(v)) && !plausible_reference(&base) {
            warn(
                &INVALID_DEFAULT_ARG_IN_FROM,
                format!("Default value for ARG {} results in empty or invalid base image name", stage.base),
                line,
            );
        }
        if let Some(p) = &stage.platform {
            if p == "$TARGETPLATFORM" || p == "${TARGETPLATFORM}" {
                warn(
                    &REDUNDANT_TARGET_PLATFORM,
                    format!("Setting platform to predefined {p} in FROM is redundant as this is the default behavior"),
                    line,
                );
            } else if !p.contains('$') {
                warn(
                    &FROM_PLATFORM_FLAG_CONST_DISALLOWED,
                    format!("FROM --platform flag should not use constant value {p:?}"),
                    line,
                );
            }
        }

        let mut has_absolute = absolute_workdir.get(&stage.base.to_ascii_lowercase()).copied().unwrap_or(false);
        // What the stage starts with: its base's variables and PATH, which every stage has.
        let mut env: Option<BTreeSet<String>> = if base.eq_ignore_ascii_case("scratch") {
            Some(BTreeSet::new())
        } else if let Some(e) = stage_env.get(&base.to_ascii_lowercase()) {
            e.clone()
        } else {
            image_env(&base).map(|names| names.into_iter().collect())
        };
        if let Some(e) = env.as_mut() {
            e.insert("PATH".into());
        }
        let mut declared: BTreeSet<String> = BTreeSet::new();
        let mut last_of: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, l) in stage.instructions.iter().enumerate() {
            if matches!(l.instruction.keyword.as_str(), "CMD" | "ENTRYPOINT" | "HEALTHCHECK") {
                last_of.insert(l.instruction.keyword.as_str(), i);
            }
        }
        for (i, l) in stage.instructions.iter().enumerate() {
            let ins = &l.instruction;
            let kw = ins.keyword.as_str();
            match kw {
                "CMD" | "ENTRYPOINT" if matches!(ins.args, Args::Shell(_)) => {
                    warn(
                        &JSON_ARGS_RECOMMENDED,
                        format!(
                            "JSON arguments recommended for {kw} to prevent unintended behavior related to OS signals"
                        ),
                        l.line_no,
                    );
                }
                "MAINTAINER" => {
                    warn(
                        &MAINTAINER_DEPRECATED,
                        "Maintainer instruction is deprecated in favor of using label".into(),
                        l.line_no,
                    );
                }
                "WORKDIR" => {
                    let dir = ins.shell_text();
                    let dir = dir.trim();
                    if dir.starts_with('/') || dir.starts_with('$') {
                        has_absolute = true;
                    } else if !has_absolute {
                        warn(
                            &WORKDIR_RELATIVE_PATH,
                            format!("Relative workdir {dir:?} can have unexpected results if the base image changes"),
                            l.line_no,
                        );
                    }
                }
                "ENV" | "LABEL" => {
                    let text = ins.shell_text();
                    let first = text.split_whitespace().next().unwrap_or("");
                    if !first.is_empty() && !first.contains('=') {
                        warn(
                            &LEGACY_KEY_VALUE_FORMAT,
                            format!("\"{kw} key=value\" should be used instead of legacy \"{kw} key value\" format"),
                            l.line_no,
                        );
                    }
                }
                _ => {}
            }
            if matches!(kw, "CMD" | "ENTRYPOINT" | "HEALTHCHECK") && last_of.get(kw) != Some(&i) {
                warn(
                    &MULTIPLE_INSTRUCTIONS_DISALLOWED,
                    format!(
                        "Multiple {kw} instructions should not be used in the same stage because only the last one will be used"
                    ),
                    l.line_no,
                );
            }
            if let Some(env) = env.as_ref().filter(|_| EXPANDED.contains(&kw)) {
                for (v, hint) in undefined_vars(ins, env, &declared, escape) {
                    let hint = hint.map(|h| format!(" (did you mean ${h}?)")).unwrap_or_default();
                    warn(&UNDEFINED_VAR, format!("Usage of undefined variable '${v}'{hint}"), l.line_no);
                }
            }
            if matches!(kw, "ARG" | "ENV") {
                for name in declared_names(ins, escape) {
                    if looks_secret(&name) {
                        warn(
                            &SECRETS_USED_IN_ARG_OR_ENV,
                            format!("Do not use ARG or ENV instructions for sensitive data ({kw} {name:?})"),
                            l.line_no,
                        );
                    }
                    match (kw, env.as_mut()) {
                        ("ENV", Some(e)) => {
                            e.insert(name);
                        }
                        ("ARG", _) => {
                            declared.insert(name);
                        }
                        _ => {}
                    }
                }
            }
        }
        if let Some((_, name)) = &from.alias {
            absolute_workdir.insert(name.to_ascii_lowercase(), has_absolute);
            // ARGs end with their stage; what ENV set is inherited.
            stage_env.insert(name.to_ascii_lowercase(), env);
        }
    }
    // Blank lines inside an instruction's continuation (the parser notes them).
    let lines = df
        .args_before_from
        .iter()
        .chain(df.stages.iter().flat_map(|s| std::iter::once(&s.from).chain(&s.instructions)));
    for l in lines.filter(|l| l.empty_continuation) {
        warn(&NO_EMPTY_CONTINUATION, "Empty continuation line".into(), l.line_no);
    }
    out.sort_by_key(|w| w.line);
    out
}

/// A FROM line as written: its keyword and, if any, its `AS` keyword and name.
struct FromLine {
    keyword: String,
    alias: Option<(String, String)>,
}

impl FromLine {
    fn read(line: &str) -> FromLine {
        let words: Vec<&str> = line.split_whitespace().collect();
        let keyword = words.first().copied().unwrap_or("FROM").to_string();
        let alias = match words.as_slice() {
            [.., as_kw, name] if as_kw.eq_ignore_ascii_case("as") && words.len() >= 4 => {
                Some((as_kw.to_string(), name.to_string()))
            }
            _ => None,
        };
        FromLine { keyword, alias }
    }
}

/// The variables an instruction's words (and, for ADD and COPY, flags) use that are neither
/// in `env` nor `declared` by an ARG of the stage, nor a platform argument; each with the
/// closest name that is, if one is close.
fn undefined_vars(
    ins: &crate::Instruction,
    env: &BTreeSet<String>,
    declared: &BTreeSet<String>,
    escape: char,
) -> Vec<(String, Option<String>)> {
    let mut words: Vec<String> = match &ins.args {
        Args::Exec(v) => v.clone(),
        Args::Shell(s) => vec![s.clone()],
    };
    if matches!(ins.keyword.as_str(), "ADD" | "COPY") {
        words.extend(ins.flags.iter().map(|(_, v)| v.clone()));
    }
    let set = |n: &str| (env.contains(n) || declared.contains(n)).then(String::new);
    let mut used = BTreeSet::new();
    for w in &words {
        if let Ok((_, vars)) = expand_with_vars(w, &set, escape) {
            used.extend(vars);
        }
    }
    used.into_iter()
        .filter(|v| !env.contains(v) && !declared.contains(v) && !PLATFORM_ARGS.contains(&v.as_str()))
        .map(|v| {
            let hint = crate::suggest::closest(&v, env.iter().chain(declared).map(String::as_str)).map(str::to_string);
            (v, hint)
        })
        .collect()
}

/// The names an ARG or ENV instruction declares, as written.
fn declared_names(ins: &crate::Instruction, escape: char) -> Vec<String> {
    let text = ins.shell_text();
    if ins.keyword == "ARG" {
        parse_arg_raw(&text, escape).unwrap_or_default().into_iter().map(|(n, _)| n).collect()
    } else {
        parse_pairs_raw(&text, escape, &ins.keyword).unwrap_or_default().into_iter().map(|(k, _)| k).collect()
    }
}

/// Whether a variable name reads like it holds a credential: one of its `_`-separated
/// words is a secret-sounding word, and none says it is public.
fn looks_secret(name: &str) -> bool {
    const SECRET: &[&str] =
        &["apikey", "auth", "credential", "credentials", "key", "password", "pword", "passwd", "secret", "token"];
    let words: Vec<String> = name.split('_').map(str::to_ascii_lowercase).collect();
    words.iter().any(|w| SECRET.contains(&w.as_str())) && !words.iter().any(|w| w == "public")
}

/// Whether an expanded FROM argument could name an image: not empty, and no empty name,
/// tag or digest.
fn plausible_reference(r: &str) -> bool {
    !r.is_empty()
        && !r.starts_with([':', '@', '/'])
        && !r.ends_with([':', '@', '/'])
        && !r.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(text: &str) -> Vec<(&'static str, String, usize)> {
        let df = crate::parse(text).unwrap();
        check(&df, &CheckConfig::default()).into_iter().map(|w| (w.rule.name, w.message, w.line)).collect()
    }

    fn names(text: &str) -> Vec<&'static str> {
        lint(text).into_iter().map(|(n, _, _)| n).collect()
    }

    /// The UndefinedVar findings, with `busybox` known to set HOME and PATH.
    fn undefined(text: &str) -> Vec<(String, usize)> {
        let df = crate::parse(text).unwrap();
        let images = |name: &str| (name == "busybox").then(|| vec!["HOME".to_string(), "PATH".to_string()]);
        check_with_images(&df, &CheckConfig::default(), &images)
            .into_iter()
            .filter(|w| w.rule.name == "UndefinedVar")
            .map(|w| (w.message, w.line))
            .collect()
    }

    #[test]
    fn variables_used_before_they_are_set_or_declared_are_reported() {
        let text = "FROM busybox AS base\nENV PATH=$PATH:/app/bin APP=/app\nCOPY $APP/x $HOME/y /z/\n\
                    COPY $foo .\nARG foo\nCOPY $foo .\nWORKDIR ${APP:-/srv}/$sub\nRUN echo $notchecked\n\
                    ENV PATH=$PAHT:/more\nCOPY --chown=$owner:0 a b\nLABEL quoted='$single'\n\
                    FROM base\nCOPY $APP $foo /\nFROM scratch\nCOPY $HOME /\nFROM elsewhere\nCOPY $anything /\n";
        assert_eq!(
            undefined(text),
            vec![
                ("Usage of undefined variable '$foo'".into(), 4),
                ("Usage of undefined variable '$sub'".into(), 7),
                ("Usage of undefined variable '$PAHT' (did you mean $PATH?)".into(), 9),
                ("Usage of undefined variable '$owner'".into(), 10),
                // An ARG ends with its stage; ENV is inherited.
                ("Usage of undefined variable '$foo'".into(), 13),
                // scratch has PATH only; an image that is not known is not checked.
                ("Usage of undefined variable '$HOME'".into(), 15),
            ]
        );
    }

    #[test]
    fn platform_arguments_and_global_args_redeclared_count_as_defined() {
        let text = "ARG V=1\nFROM busybox\nARG V\nARG TARGETARCH\nLABEL v=$V arch=$TARGETARCH os=$TARGETOS\n";
        assert_eq!(undefined(text), vec![]);
        // Control: a global ARG not declared again in the stage is not there.
        assert_eq!(
            undefined("ARG V=1\nFROM busybox\nLABEL v=$V\n"),
            vec![("Usage of undefined variable '$V'".into(), 3)]
        );
    }

    #[test]
    fn a_clean_file_has_no_findings() {
        let text = "# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM $BASE AS build\nWORKDIR /src\nRUN true\n\
                    FROM build\nWORKDIR out\nENV A=1 B=2\nLABEL x=y\nCMD [\"sh\"]\n";
        assert_eq!(lint(text), vec![]);
    }

    #[test]
    fn stage_names_and_from_casing() {
        let l = lint("FROM busybox as Build\nFROM busybox AS build\nFROM busybox AS scratch\n");
        assert!(l.contains(&("StageNameCasing", "Stage name 'Build' should be lowercase".into(), 1)), "{l:?}");
        assert!(l.contains(&("FromAsCasing", "'as' and 'FROM' keywords' casing do not match".into(), 1)), "{l:?}");
        assert!(
            l.contains(&(
                "DuplicateStageName",
                "Duplicate stage name \"build\", stage names should be unique".into(),
                2
            )),
            "{l:?}"
        );
        assert!(
            l.contains(&(
                "ReservedStageName",
                "Stage name should not use the same name as reserved stage \"scratch\"".into(),
                3
            )),
            "{l:?}"
        );
        assert_eq!(names("from busybox as b\n"), Vec::<&str>::new(), "all lower is consistent");
    }

    #[test]
    fn instruction_casing_follows_the_majority() {
        let l = lint("FROM busybox\nrun true\nRUN true\nRUN true\nRun true\n");
        assert_eq!(
            l,
            vec![
                (
                    "ConsistentInstructionCasing",
                    "Command 'run' should match the case of the command majority (uppercase)".into(),
                    2
                ),
                (
                    "ConsistentInstructionCasing",
                    "Command 'Run' should match the case of the command majority (uppercase)".into(),
                    5
                ),
            ]
        );
        let l = lint("from busybox\nrun true\nRUN true\n");
        assert_eq!(l[0].1, "Command 'RUN' should match the case of the command majority (lowercase)");
    }

    #[test]
    fn cmd_entrypoint_maintainer_and_repeats() {
        let l = lint(
            "FROM busybox\nMAINTAINER me\nCMD echo hi\nCMD [\"a\"]\nENTRYPOINT sh\nHEALTHCHECK NONE\nHEALTHCHECK NONE\n",
        );
        let got: Vec<(&str, usize)> = l.iter().map(|(n, _, line)| (*n, *line)).collect();
        assert_eq!(
            got,
            vec![
                ("MaintainerDeprecated", 2),
                ("JSONArgsRecommended", 3),
                ("MultipleInstructionsDisallowed", 3),
                ("JSONArgsRecommended", 5),
                ("MultipleInstructionsDisallowed", 6),
            ]
        );
        assert_eq!(l[1].1, "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals");
    }

    #[test]
    fn from_arguments_must_be_declared_and_give_a_valid_reference() {
        let l = lint("ARG TAG\nARG IMAGE=busybox\nFROM $IMGE\nFROM ${IMAGE}:${TAG}\nFROM busybox:$TARGETARCH\n");
        assert_eq!(
            l,
            vec![
                ("UndefinedArgInFrom", "FROM argument 'IMGE' is not declared (did you mean IMAGE?)".into(), 3),
                (
                    "InvalidDefaultArgInFrom",
                    "Default value for ARG ${IMAGE}:${TAG} results in empty or invalid base image name".into(),
                    4
                ),
            ]
        );
    }

    #[test]
    fn platform_flags() {
        let l = names(
            "FROM --platform=$TARGETPLATFORM busybox\nFROM --platform=linux/amd64 busybox\nFROM --platform=$BUILDPLATFORM busybox\n",
        );
        assert_eq!(l, vec!["RedundantTargetPlatform", "FromPlatformFlagConstDisallowed"]);
    }

    #[test]
    fn relative_workdirs_need_an_absolute_one_first_in_the_stage_or_its_base() {
        let l = lint(
            "FROM busybox AS a\nWORKDIR app\nWORKDIR /app\nWORKDIR sub\nFROM a\nWORKDIR more\nFROM busybox\nWORKDIR x\n",
        );
        let got: Vec<usize> =
            l.iter().filter(|(n, _, _)| *n == "WorkdirRelativePath").map(|(_, _, line)| *line).collect();
        assert_eq!(got, vec![2, 8]);
        assert!(l[0].1.contains("Relative workdir \"app\""), "{l:?}");
    }

    #[test]
    fn legacy_key_values_and_secret_names() {
        let l = names(
            "ARG GITHUB_TOKEN\nFROM busybox\nENV PATH /bin\nLABEL a b\nENV DB_PASSWORD=x PUBLIC_KEY=y OTHER=z\nARG AUTHOR=me\n",
        );
        assert_eq!(
            l,
            vec!["SecretsUsedInArgOrEnv", "LegacyKeyValueFormat", "LegacyKeyValueFormat", "SecretsUsedInArgOrEnv"]
        );
    }

    #[test]
    fn blank_lines_inside_a_continuation() {
        let l = lint("FROM busybox\nRUN echo a \\\n\n    b\nRUN echo c \\\n    d\n");
        assert_eq!(l, vec![("NoEmptyContinuation", "Empty continuation line".into(), 2)]);
    }

    /// The parser's continuation rules, not a second copy of them: an escaped escape ends
    /// the line, and a FROM continued past a blank line is read whole.
    #[test]
    fn continuations_are_read_as_the_parser_reads_them() {
        assert_eq!(lint("FROM busybox\nENV P=C:\\\\\n\nRUN x\n"), vec![]);
        let l = names("FROM busybox \\\n\nAS Build\n");
        assert_eq!(l, vec!["StageNameCasing", "NoEmptyContinuation"]);
        assert_eq!(names("FROM busybox\nENV A=\"x PASSWORD=y\"\n"), Vec::<&str>::new(), "a value is not a name");
    }

    #[test]
    fn the_configuration_skips_rules_and_turns_findings_into_errors() {
        let text = "# check=skip=JSONArgsRecommended;error=true\nFROM busybox AS Build\nCMD echo\n";
        let df = crate::parse(text).unwrap();
        let cfg = CheckConfig::for_build(&df, None).unwrap();
        assert!(cfg.error);
        let w = check(&df, &cfg);
        assert_eq!(w.iter().map(|w| w.rule.name).collect::<Vec<_>>(), vec!["StageNameCasing"]);
        assert_eq!(violation_error(&w), "lint violation found for rules: StageNameCasing");
        let cfg = CheckConfig::for_build(&df, Some("skip=all")).unwrap();
        assert!(check(&df, &cfg).is_empty(), "the build argument wins over the directive");
        assert!(CheckConfig::parse("error=maybe").unwrap_err().contains("error=maybe"));
        assert!(CheckConfig::parse("bogus=1").unwrap_err().contains("bogus"));
    }

    #[test]
    fn the_detailed_form_shows_the_file_around_each_line() {
        let text = "FROM busybox\nRUN true\nCMD echo hi\n";
        let df = crate::parse(text).unwrap();
        let w = check(&df, &CheckConfig::default());
        let out = detailed(&w, text, "Dockerfile");
        assert!(out.starts_with("Check complete, 1 warning has been found!\n"), "{out}");
        assert!(
            out.contains(
                "WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/\n"
            ),
            "{out}"
        );
        assert!(out.contains("Dockerfile:3\n"), "{out}");
        assert!(out.contains("   3 | >>> CMD echo hi\n"), "{out}");
        assert!(out.contains("   2 |     RUN true\n"), "{out}");
        assert_eq!(detailed(&[], text, "Dockerfile"), "Check complete, no warnings found.\n");
        assert_eq!(
            summary(&w),
            " 1 warning found (use docker --debug to expand):\n - JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 3)\n"
        );
    }
}
