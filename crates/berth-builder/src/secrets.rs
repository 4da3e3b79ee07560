//! What a build's client lends it for single RUN steps: secrets (`--secret`) and SSH
//! agents (`--ssh`).
//!
//! # Contract
//!
//! A secret's value is held in memory only, reaches a step only through
//! `RUN --mount=type=secret` (a file on a tmpfs, or an environment variable of that one
//! command), and is never part of a layer, the image config or history, a cache key, a
//! cache record or the build's output. `Debug` shows the ids, never the values.
//!
//! An SSH agent is a Unix socket on the daemon's host (the client's agent, or a proxy to
//! it that the caller keeps open for the build), bind-mounted into the steps that ask
//! for it by id.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

/// The largest secret a build takes (BuildKit's limit): a secret is held in memory and
/// written to a small tmpfs for its step.
pub const MAX_SECRET: usize = 500 << 10;

/// Secrets by id.
#[derive(Clone, Default)]
pub struct Secrets(BTreeMap<String, Arc<[u8]>>);

impl Secrets {
    pub fn insert(&mut self, id: impl Into<String>, value: impl Into<Arc<[u8]>>) {
        self.0.insert(id.into(), value.into());
    }

    pub fn get(&self, id: &str) -> Option<&[u8]> {
        self.0.get(id).map(|v| &v[..])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// SSH agent sockets on the daemon's host, by id (`default` for a bare `--ssh default`).
pub type SshAgents = BTreeMap<String, PathBuf>;

/// The ids a Dockerfile's `RUN --mount=type=ssh` and `type=secret` steps name: what a
/// client that lends them through a session (buildx) is asked for before the build runs.
#[derive(Debug, Default, PartialEq)]
pub struct MountIds {
    pub ssh: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
}

/// Collects [`MountIds`], each mount option expanded as the step will expand it (see
/// `parse_mounts_with`) with what is known before the build: `--build-arg` values, ARG
/// defaults (a pre-FROM ARG a stage declares again included) and the stage's ENVs. A
/// variable only a base image sets expands empty here; the step, expanded with it, then
/// finds no agent or secret under the other id (and fails if the mount is `required`).
pub fn mount_ids(dockerfile: &str, build_args: &BTreeMap<String, Option<String>>) -> MountIds {
    use berth_dockerfile::expand::expand;
    use berth_dockerfile::run_flags::{RunMount, parse_mounts_with};
    use berth_dockerfile::words::{parse_arg_raw, parse_pairs_raw};
    let mut out = MountIds::default();
    let Ok(df) = berth_dockerfile::parse(dockerfile) else { return out };
    let esc = df.directives.escape;
    let meta = crate::plan::Plan::new(&df, None, build_args, 0).map(|p| p.meta_args).unwrap_or_default();
    for stage in &df.stages {
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        for line in &stage.instructions {
            let ins = &line.instruction;
            let text = ins.shell_text();
            match ins.keyword.as_str() {
                "ARG" => {
                    for (name, default) in parse_arg_raw(&text, esc).unwrap_or_default() {
                        let env = |k: &str| vars.get(k).cloned();
                        let default = default.and_then(|d| expand(&d, &env, esc).ok());
                        let inherited = meta.get(&name).cloned().flatten();
                        if let Some(v) = build_args.get(&name).cloned().flatten().or(default).or(inherited) {
                            vars.insert(name, v);
                        }
                    }
                }
                "ENV" => {
                    let mut set = Vec::new();
                    for (k, v) in parse_pairs_raw(&text, esc, "ENV").unwrap_or_default() {
                        let env = |k: &str| vars.get(k).cloned();
                        if let (Ok(k), Ok(v)) = (expand(&k, &env, esc), expand(&v, &env, esc)) {
                            set.push((k, v));
                        }
                    }
                    vars.extend(set);
                }
                "RUN" => {
                    let env = |k: &str| vars.get(k).cloned();
                    let x = |v: &str| expand(v, &env, esc).map_err(|e| e.to_string());
                    for m in parse_mounts_with(ins.flag_values("mount"), Some(&x)).unwrap_or_default() {
                        match m {
                            RunMount::Ssh { id, .. } => drop(out.ssh.insert(id)),
                            RunMount::Secret { id, .. } => drop(out.secrets.insert(id)),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_ids_expand_build_args_defaults_and_envs() {
        let df = "ARG GLOBAL=g\nFROM busybox\nARG GLOBAL\nARG SSH_ID=fallback\nENV KEY=k-$GLOBAL\n\
                  RUN --mount=type=ssh,id=$SSH_ID --mount=type=secret,id=${KEY} true\n\
                  RUN --mount=type=ssh,id=plain --mount=type=ssh true\n";
        let none = BTreeMap::new();
        let ids = mount_ids(df, &none);
        assert_eq!(ids.ssh, ["default", "fallback", "plain"].map(String::from).into());
        assert_eq!(ids.secrets, ["k-g".to_string()].into());
        let args = [("SSH_ID".to_string(), Some("gh".to_string())), ("GLOBAL".into(), Some("x".into()))].into();
        let ids = mount_ids(df, &args);
        assert_eq!(ids.ssh, ["default", "gh", "plain"].map(String::from).into());
        assert_eq!(ids.secrets, ["k-x".to_string()].into());
    }

    #[test]
    fn debug_shows_ids_only() {
        let mut s = Secrets::default();
        s.insert("token", b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "{\"token\"}");
        assert_eq!(s.get("token"), Some(&b"hunter2"[..]));
    }
}
