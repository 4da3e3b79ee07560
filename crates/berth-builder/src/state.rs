//! One stage's state as its steps run, and the instructions that only change the config.

use std::collections::BTreeMap;

use berth_api::models::ContainerConfig;
use berth_dockerfile::changes::{self, clean_abs, normalize_port, set_env};
use berth_dockerfile::expand::{expand, expand_split, expand_words};
use berth_dockerfile::words::{parse_arg_raw, parse_pairs_raw};
use berth_dockerfile::{Args, Instruction};
use berth_image::Image;

use crate::{BuildError, Result};

pub(crate) struct StageState {
    /// The latest step's image; `None` for `FROM scratch` before any step.
    pub image: Option<Image>,
    /// The config the next step starts from.
    pub config: ContainerConfig,
    /// The image's author (MAINTAINER), carried from step to step.
    pub author: String,
    /// The latest step's cache key.
    pub key: String,
    /// ARGs declared in this stage and their values (`None`: declared without one).
    pub args: BTreeMap<String, Option<String>>,
    pub escape: char,
    /// Whether this stage set CMD: ENTRYPOINT then keeps it (it only resets an inherited one).
    pub cmd_set: bool,
    /// The steps that made the image, with those of the stage it is based on (what an
    /// inline cache records).
    pub trail: Vec<crate::inline_cache::Step>,
}

/// The `PATH` Docker's builder gives a stage whose base sets none (and `FROM scratch`).
pub(crate) const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl StageState {
    pub fn new(image: Option<Image>, key: String, escape: char) -> StageState {
        let mut config: ContainerConfig = image.as_ref().map(|i| i.config.config.clone()).unwrap_or_default();
        // As Docker's classic builder starts a stage: the steps after FROM see (and
        // commit) the default PATH when the base has none.
        if !config.env.iter().any(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == "PATH") {
            config.env.push(format!("PATH={DEFAULT_PATH}"));
        }
        let author = image.as_ref().map(|i| i.config.author.clone()).unwrap_or_default();
        StageState { image, config, author, key, args: BTreeMap::new(), escape, cmd_set: false, trail: Vec::new() }
    }

    /// Moves to a step's image (built or from the cache).
    pub fn advance(&mut self, image: Image, key: String) {
        self.trail.push(crate::inline_cache::Step { key: key.clone(), layers: image.config.rootfs.diff_ids.len() });
        self.config = image.config.config.clone();
        self.author = image.config.author.clone();
        self.image = Some(image);
        self.key = key;
    }

    /// A variable as substitution sees it: ENV wins over ARG of the same name.
    pub fn lookup(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        if let Some(v) = self.config.env.iter().find_map(|e| e.strip_prefix(&prefix)) {
            return Some(v.to_string());
        }
        self.args.get(name).cloned().flatten()
    }

    pub fn expand(&self, s: &str) -> Result<String> {
        Ok(expand(s, &|n| self.lookup(n), self.escape)?)
    }

    pub fn expand_words(&self, words: &[String]) -> Result<Vec<String>> {
        Ok(expand_words(words, &|n| self.lookup(n), self.escape)?)
    }

    /// The shell for shell-form commands.
    pub fn shell(&self) -> Vec<String> {
        self.config.shell.clone().unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// Declared ARGs with values that ENV does not shadow: what a RUN step's environment
    /// gains, and its cache key covers.
    pub fn run_args(&self) -> BTreeMap<String, String> {
        self.args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .filter(|(k, _)| !self.config.env.iter().any(|e| e.split_once('=').map(|(n, _)| n) == Some(k.as_str())))
            .collect()
    }

    /// Resolves a WORKDIR argument against the current one.
    pub fn workdir(&self, arg: &str) -> String {
        if arg.starts_with('/') || self.config.working_dir.is_empty() {
            clean_abs(arg)
        } else {
            clean_abs(&format!("{}/{}", self.config.working_dir, arg))
        }
    }
}

/// Applies a config-only instruction: returns the instruction as it reads after
/// substitution (the cache key's and history's text). ARG, RUN, COPY, ADD and WORKDIR are
/// the executor's.
pub(crate) fn apply_config(st: &mut StageState, ins: &Instruction) -> Result<String> {
    let text = ins.shell_text();
    let esc = st.escape;
    Ok(match ins.keyword.as_str() {
        "ENV" => {
            let pairs = parse_pairs_raw(&text, esc, "ENV")?;
            let mut done = Vec::new();
            // Every value sees the environment from before this instruction.
            let mut expanded = Vec::new();
            for (k, v) in pairs {
                expanded.push((st.expand(&k)?, st.expand(&v)?));
            }
            for (k, v) in expanded {
                set_env(&mut st.config.env, &k, &v);
                done.push(format!("{k}={}", quote(&v)));
            }
            format!("ENV {}", done.join(" "))
        }
        "LABEL" => {
            let mut done = Vec::new();
            for (k, v) in parse_pairs_raw(&text, esc, "LABEL")? {
                let (k, v) = (st.expand(&k)?, st.expand(&v)?);
                done.push(format!("{}={}", quote(&k), quote(&v)));
                st.config.labels.insert(k, v);
            }
            format!("LABEL {}", done.join(" "))
        }
        "EXPOSE" => {
            // The text (history, cache key) is the ports as written after substitution,
            // in their order, as Docker's classic builder commits it.
            let mut words = Vec::new();
            let mut ports = Vec::new();
            for w in ins.arg_words() {
                for p in expand_split(&w, &|n| st.lookup(n), esc)? {
                    ports.push(normalize_port(&p)?);
                    words.push(p);
                }
            }
            let set = st.config.exposed_ports.get_or_insert_with(Default::default);
            for p in &ports {
                set.insert(p.clone(), serde_json::json!({}));
            }
            format!("EXPOSE {}", words.join(" "))
        }
        "VOLUME" => {
            let words = match &ins.args {
                Args::Exec(v) => st.expand_words(v)?,
                Args::Shell(_) => st.expand_words(&ins.arg_words())?,
            };
            if words.is_empty() || words.iter().any(|w| w.trim().is_empty()) {
                return Err(BuildError::Invalid("VOLUME specified can not be an empty string".into()));
            }
            let set = st.config.volumes.get_or_insert_with(Default::default);
            for w in &words {
                set.insert(w.clone(), serde_json::json!({}));
            }
            format!("VOLUME [{}]", words.join(" "))
        }
        "USER" => {
            st.config.user = st.expand(text.trim())?;
            format!("USER {}", st.config.user)
        }
        "STOPSIGNAL" => {
            let s = st.expand(text.trim())?;
            check_signal(&s)?;
            st.config.stop_signal = s.clone();
            format!("STOPSIGNAL {s}")
        }
        "MAINTAINER" => {
            st.author = text.trim().to_string();
            format!("MAINTAINER {}", st.author)
        }
        "CMD" | "ENTRYPOINT" => {
            let cmd = st.config.cmd.clone();
            changes::apply(&mut st.config, ins, esc)?;
            if ins.keyword == "CMD" {
                st.cmd_set = true;
            } else if st.cmd_set {
                // ENTRYPOINT resets only a CMD inherited from the base.
                st.config.cmd = cmd;
            }
            let v = if ins.keyword == "CMD" { &st.config.cmd } else { &st.config.entrypoint };
            format!("{} {}", ins.keyword, go_list(v.as_deref().unwrap_or_default()))
        }
        "SHELL" => {
            changes::apply(&mut st.config, ins, esc)?;
            format!("SHELL [{}]", st.shell().join(" "))
        }
        "HEALTHCHECK" | "ONBUILD" => {
            changes::apply(&mut st.config, ins, esc)?;
            format!("{} {}", ins.keyword, text.trim())
        }
        other => return Err(BuildError::Internal(format!("{other} is not a config instruction"))),
    })
}

/// `ARG name[=default] ...`: declares each in the stage. A value comes from `--build-arg`,
/// else the default, else (bare `ARG name`) the pre-FROM ARG of that name.
pub(crate) fn apply_arg(
    st: &mut StageState,
    ins: &Instruction,
    build_args: &BTreeMap<String, Option<String>>,
    meta_args: &BTreeMap<String, Option<String>>,
) -> Result<(String, Vec<String>)> {
    let mut shown = Vec::new();
    let mut names = Vec::new();
    for (name, default) in parse_arg_raw(&ins.shell_text(), st.escape)? {
        let default = default.map(|d| st.expand(&d)).transpose()?;
        let inherited = meta_args.get(&name).cloned().flatten();
        let value = build_args.get(&name).cloned().flatten().or(default).or(inherited);
        shown.push(match &value {
            Some(v) => format!("{name}={v}"),
            None => name.clone(),
        });
        st.args.insert(name.clone(), value);
        names.push(name);
    }
    Ok((format!("ARG {}", shown.join(" ")), names))
}

/// A value quoted when it needs to be, for the canonical text.
fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:@,+%".contains(c)) {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

/// `["a" "b"]`, as Go prints a string slice with `%q` (what Docker's history shows).
pub(crate) fn go_list(v: &[String]) -> String {
    format!("[{}]", v.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" "))
}

fn check_signal(s: &str) -> Result<()> {
    let ok = match s.parse::<i32>() {
        Ok(n) => (1..=64).contains(&n),
        Err(_) => {
            let name = s.strip_prefix("SIG").unwrap_or(s);
            const NAMES: &[&str] = &[
                "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
                "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU",
                "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS",
            ];
            NAMES.contains(&name) || name.starts_with("RTMIN") || name.starts_with("RTMAX")
        }
    };
    if ok { Ok(()) } else { Err(BuildError::Invalid(format!("Invalid signal: {s}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st() -> StageState {
        StageState::new(None, String::new(), '\\')
    }

    fn apply(st: &mut StageState, line: &str) -> String {
        apply_config(st, &Instruction::parse(line).unwrap()).unwrap()
    }

    #[test]
    fn env_wins_over_arg_and_values_see_the_old_environment() {
        let mut s = st();
        let mut build_args = BTreeMap::new();
        build_args.insert("V".to_string(), Some("from-arg".to_string()));
        apply_arg(&mut s, &Instruction::parse("ARG V=default").unwrap(), &build_args, &BTreeMap::new()).unwrap();
        assert_eq!(s.lookup("V").as_deref(), Some("from-arg"));
        assert_eq!(apply(&mut s, "ENV A=$V B=${A:-unset}"), "ENV A=from-arg B=unset");
        apply(&mut s, "ENV V=env");
        assert_eq!(s.lookup("V").as_deref(), Some("env"));
        assert!(s.run_args().is_empty(), "ENV shadows the ARG in RUN's environment");
    }

    #[test]
    fn config_instructions() {
        let mut s = st();
        assert_eq!(apply(&mut s, "CMD echo hi"), r#"CMD ["/bin/sh" "-c" "echo hi"]"#);
        apply(&mut s, r#"ENTRYPOINT ["/ep"]"#);
        assert!(s.config.cmd.is_some(), "ENTRYPOINT keeps the stage's own CMD");
        let mut inherited = st();
        inherited.config.cmd = Some(vec!["base".into()]);
        apply(&mut inherited, r#"ENTRYPOINT ["/ep"]"#);
        assert_eq!(inherited.config.cmd, None, "ENTRYPOINT resets an inherited CMD");
        assert_eq!(apply(&mut s, "EXPOSE 80 53/udp"), "EXPOSE 80 53/udp");
        assert_eq!(apply(&mut s, "LABEL a=b \"c d\"=e"), r#"LABEL a=b "c d"=e"#);
        assert_eq!(s.config.labels.get("c d").map(String::as_str), Some("e"));
        assert_eq!(apply(&mut s, "VOLUME /data [/x]"), "VOLUME [/data [/x]]");
        assert_eq!(apply(&mut s, r#"SHELL ["/bin/ash", "-ec"]"#), "SHELL [/bin/ash -ec]");
        assert_eq!(apply(&mut s, "STOPSIGNAL SIGKILL"), "STOPSIGNAL SIGKILL");
        assert!(apply_config(&mut s, &Instruction::parse("STOPSIGNAL NOPE").unwrap()).is_err());
        s.config.working_dir = "/a".into();
        assert_eq!(s.workdir("b/../c"), "/a/c");
        assert_eq!(s.workdir("/x"), "/x");
    }
}
