//! BuildKit's API through its real clients: the docker CLI with the buildx plugin (its
//! "docker" driver, the default for a daemon that serves `/grpc`) and docker compose v2.
//! The plugins come from Debian's packages (scripts/deps.sh puts them in
//! `.cache/cli-plugins`); a test fails, not passes, when they are missing. RUN steps use
//! `--network none`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_integration::Daemon;

mod auth;
mod build;
mod cache;
mod compose;
mod contexts;
mod du_prune;
mod export;
mod push;
mod ssh;

/// Where scripts/deps.sh installs docker-buildx and docker-compose.
fn plugins_dir() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/cli-plugins");
    for plugin in ["docker-buildx", "docker-compose"] {
        assert!(
            p.join(plugin).exists(),
            "{plugin} is not installed in {}: run scripts/deps.sh (scripts/test.sh does)",
            p.display()
        );
    }
    p.canonicalize().unwrap()
}

/// What a docker command printed.
pub(crate) struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    #[track_caller]
    pub fn ok(self) -> Out {
        assert_eq!(self.code, 0, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// The docker CLI against `d`, with the buildx and compose plugins.
pub(crate) fn docker(d: &Daemon, dir: &Path, args: &[&str]) -> Out {
    docker_env(d, dir, args, &[])
}

pub(crate) fn docker_env(d: &Daemon, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let config = d.dir.path().join("buildx-config");
    if !config.join("config.json").exists() {
        std::fs::create_dir_all(&config).unwrap();
        let json = serde_json::json!({ "cliPluginsExtraDirs": [plugins_dir()] });
        std::fs::write(config.join("config.json"), json.to_string()).unwrap();
    }
    let mut c = Command::new("docker");
    c.env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", &config)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_BUILDKIT")
        .env("BUILDKIT_PROGRESS", "plain")
        .current_dir(dir)
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.args(args).output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A directory with the given files, under the daemon's test directory.
pub(crate) fn files(d: &Daemon, list: &[(&str, &str)]) -> PathBuf {
    let dir = d.dir.path().join(berth_integration::unique("bk"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, content) in list {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

/// The lines of buildx's plain progress that name a step, then say it was cached: the names.
pub(crate) fn cached_steps(progress: &str) -> Vec<String> {
    let mut names = std::collections::HashMap::new();
    let mut cached = Vec::new();
    for l in progress.lines() {
        let Some(rest) = l.strip_prefix('#') else { continue };
        let Some((n, text)) = rest.split_once(' ') else { continue };
        if text == "CACHED" {
            if let Some(name) = names.get(n) {
                cached.push(String::clone(name));
            }
        } else if text.starts_with('[') {
            names.insert(n.to_string(), text.to_string());
        }
    }
    cached
}
