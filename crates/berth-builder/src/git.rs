//! Git build contexts: a `remote=` that names a git repository is cloned with the host's
//! git client, as Docker's classic builder does (`URL#ref:subdir` picks a branch, tag or
//! commit and a directory of it). A host without git gets an error that says so; the URL
//! is never downloaded as a web page instead.

use std::path::Path;

use tokio::process::Command;

use crate::{BuildError, Result};

/// Whether Docker reads `s` as a git repository (`urlutil.IsGitURL`): `git://`, `git@`,
/// `github.com/`, or an http(s) URL whose path ends in `.git` (before a fragment).
pub(crate) fn is_git_url(s: &str) -> bool {
    if ["git://", "git@", "github.com/"].iter().any(|p| s.starts_with(p)) {
        return true;
    }
    let base = s.split_once('#').map_or(s, |(b, _)| b);
    (s.starts_with("http://") || s.starts_with("https://")) && base.ends_with(".git") && !s.ends_with('#')
}

/// The repository, ref and subdirectory of `url#ref:subdir`.
fn parts(url: &str) -> (String, String, String) {
    let (repo, fragment) = url.split_once('#').unwrap_or((url, ""));
    let (reference, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
    let repo = if repo.starts_with("github.com/") { format!("https://{repo}") } else { repo.to_string() };
    (repo, reference.to_string(), subdir.to_string())
}

/// Whose git settings a clone runs with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Credentials {
    /// The daemon's own (its HOME's git config, SSH keys and agent): for a build context
    /// the client names, as dockerd clones it.
    Host,
    /// None at all: for `ADD <git URL>`, which the Dockerfile names. Whoever writes a
    /// Dockerfile must not clone with the daemon's credentials, send its configured
    /// headers, or follow its `insteadOf` rewrites (BuildKit clones the same way).
    None,
}

async fn git(dir: &Path, args: &[&str], creds: Credentials) -> Result<()> {
    let mut cmd = Command::new("git");
    // A build that ends (or whose client leaves) takes its git with it.
    cmd.kill_on_drop(true);
    if creds == Credentials::None {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()))
            .env("HOME", "/nonexistent")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_ASKPASS", "/bin/false")
            .env("SSH_ASKPASS", "/bin/false")
            .env(
                "GIT_SSH_COMMAND",
                "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none -i /dev/null",
            );
        for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"] {
            if let Some(v) = std::env::var_os(proxy) {
                cmd.env(proxy, v);
            }
        }
    }
    let out = cmd
        .arg("-C")
        .arg(dir)
        // Submodules may not reach the daemon's own files (file://) or run commands (ext::).
        .args(["-c", "protocol.file.allow=user", "-c", "protocol.ext.allow=never"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_PROTOCOL_FROM_USER", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BuildError::Invalid(
                    "unable to prepare context: unable to find 'git': git is not installed on the daemon's host (exec: \"git\": executable file not found in $PATH)".into(),
                )
            } else {
                BuildError::io("running git", e)
            }
        })?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(BuildError::Invalid(format!("git {}: {said}: {}", args.first().copied().unwrap_or(""), out.status)))
}

/// Clones `url` (with its `#ref:subdir` fragment) and moves the directory the context is
/// into `root` (which must not exist; its parent must). `work` is scratch space for the
/// checkout, removed by the caller.
pub(crate) async fn clone_into(url: &str, work: &Path, root: &Path, creds: Credentials) -> Result<()> {
    let (repo, reference, subdir) = parts(url);
    // A ref is never an option to git (`#--upload-pack=...`).
    if reference.starts_with('-') {
        return Err(BuildError::Invalid(format!("unable to prepare context: invalid git ref {reference:?} in {url}")));
    }
    let fail =
        |e: BuildError| BuildError::Invalid(format!("unable to prepare context: unable to 'git clone' {url}: {e}"));
    std::fs::create_dir_all(work).map_err(|e| BuildError::io("creating the checkout directory", e))?;
    // The git client is absent: say so, before anything else.
    if let Err(e) = git(work, &["--version"], creds).await {
        return Err(match e {
            BuildError::Invalid(m) if m.starts_with("unable to prepare context") => BuildError::Invalid(m),
            e => fail(e),
        });
    }
    git(work, &["init", "-q"], creds).await.map_err(fail)?;
    git(work, &["remote", "add", "origin", &repo], creds).await.map_err(fail)?;
    let wanted = if reference.is_empty() { "HEAD" } else { reference.as_str() };
    // A shallow fetch of the ref; servers that refuse it (dumb http, a commit not at a
    // ref's tip) get a full fetch.
    if git(work, &["fetch", "-q", "--depth", "1", "origin", wanted], creds).await.is_ok() {
        git(work, &["checkout", "-q", "FETCH_HEAD"], creds).await.map_err(fail)?;
    } else {
        git(work, &["fetch", "-q", "--tags", "origin"], creds).await.map_err(fail)?;
        let target = if reference.is_empty() { "origin/HEAD".to_string() } else { reference.clone() };
        if git(work, &["checkout", "-q", &target], creds).await.is_err() {
            git(work, &["checkout", "-q", &format!("origin/{reference}")], creds).await.map_err(fail)?;
        }
    }
    if work.join(".gitmodules").exists() {
        git(work, &["submodule", "update", "-q", "--init", "--recursive", "--depth", "1"], creds)
            .await
            .map_err(fail)?;
    }
    // The subdirectory, confined to the checkout (a symlink in the repository must not
    // lead out of it).
    let base = std::fs::canonicalize(work).map_err(|e| BuildError::io("reading the checkout", e))?;
    let sub = subdir.trim_matches('/');
    let dir = if sub.is_empty() {
        base.clone()
    } else {
        std::fs::canonicalize(base.join(sub)).ok().filter(|p| p.starts_with(&base) && p.is_dir()).ok_or_else(|| {
            BuildError::Invalid(format!("unable to prepare context: subdirectory {subdir:?} not found in {repo}"))
        })?
    };
    std::fs::rename(&dir, root).map_err(|e| BuildError::io("moving the checkout into place", e))
}

/// `ADD <git URL> <dest>`: checks the repository out under `scratch` (as the `n`th
/// source) and returns the directory whose contents ADD copies. Without `keep_git_dir`
/// the `.git` directory is left out, as BuildKit does; `checksum` is the commit the
/// checkout must be at.
pub(crate) async fn add_checkout(
    url: &str,
    scratch: &Path,
    n: usize,
    keep_git_dir: bool,
    checksum: Option<&str>,
) -> Result<std::path::PathBuf> {
    let work = scratch.join(format!("git-work{n}"));
    let root = scratch.join(format!("git{n}"));
    std::fs::create_dir_all(scratch).map_err(|e| BuildError::io("creating the checkout directory", e))?;
    clone_into(url, &work, &root, Credentials::None).await.map_err(|e| {
        let said = e.to_string();
        BuildError::Invalid(format!("ADD {url}: {}", said.trim_start_matches("unable to prepare context: ")))
    })?;
    if let Some(want) = checksum {
        let repo = if root.join(".git").exists() { root.clone() } else { work.clone() };
        let out = Command::new("git")
            .kill_on_drop(true)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .arg("-C")
            .arg(&repo)
            .args(["rev-parse", "HEAD"])
            .output()
            .await
            .map_err(|e| BuildError::io("running git", e))?;
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let want = want.strip_prefix("sha1:").unwrap_or(want);
        if got.is_empty() || !got.starts_with(want) || want.len() < 7 {
            return Err(BuildError::Invalid(format!(
                "ADD {url}: expected checksum {want}, the checkout is at commit {got}"
            )));
        }
    }
    if !keep_git_dir {
        let _ = std::fs::remove_dir_all(root.join(".git"));
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_urls_are_git() {
        for yes in
            ["git://h/r", "git@github.com:a/b.git", "github.com/a/b", "https://h/a/b.git", "http://h/r.git#main:sub"]
        {
            assert!(is_git_url(yes), "{yes}");
        }
        for no in ["https://h/a/b", "http://h/ctx.tar.gz", "https://h/a.git/Dockerfile", "/dir"] {
            assert!(!is_git_url(no), "{no}");
        }
        assert_eq!(parts("git://h/r.git#v1:a/b"), ("git://h/r.git".into(), "v1".into(), "a/b".into()));
        assert_eq!(parts("github.com/a/b").0, "https://github.com/a/b");
    }

    #[tokio::test]
    async fn a_ref_is_never_an_option() {
        let dir = tempfile::tempdir().unwrap();
        let err = clone_into(
            "git://127.0.0.1:1/r.git#--upload-pack=touch x",
            &dir.path().join("w"),
            &dir.path().join("r"),
            Credentials::Host,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("invalid git ref"), "{err}");
    }
}
