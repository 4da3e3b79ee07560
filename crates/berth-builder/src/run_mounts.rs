//! `RUN --mount` and `RUN --network`: what a step's container gets besides its image.
//!
//! A step's mounts are decided in two phases. Before the cache is asked, [`Build::mount_key`]
//! turns them into cache-key fields: every setting of every mount, the content digest of a
//! bind mount's source in the context, and the image ID behind a `from=`. Never a cache
//! mount's content, a secret's value or an SSH socket (BuildKit's rules: those change
//! nothing a step's key covers). Only on a miss does [`Build::mount_prepare`] make them
//! real on the host, as [`Active`] mounts the step's container gets:
//!
//! - `cache`: a directory from [`crate::cache_mounts`], locked as `sharing` says.
//! - `bind`: the context's path itself, read-only; or, for `rw` or a stage or image, a
//!   copy in the step's scratch directory (writes land there and are thrown away).
//! - `tmpfs`: a tmpfs of `size`.
//! - `secret`: a file on a tmpfs made for the step (never on disk), and/or a variable in
//!   the command's environment, which the container's init (berth-shim's, with
//!   `--secret-env`) reads from such a file, so the value is in no container config. A
//!   secret the client did not provide is absent, or an error with `required`.
//! - `ssh`: the agent socket the client forwarded for that id (berth's CLI: a socket on the
//!   daemon's host; buildx: a relay through its session, in berth-buildkit's `ssh`), as with secrets.
//!
//! Whatever is mounted stays out of the layer: it is not in the container's upper
//! directory, and the empty files and directories the runtime makes in the rootfs for
//! mount points the image lacked are removed before the layer is taken ([`remove_stubs`]).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use berth_api::models::Mount;
use berth_dockerfile::Instruction;
use berth_dockerfile::run_flags::{RunMount, RunNetwork, Sharing, parse_mounts_with, parse_network};
use berth_image::Image;

use crate::cache_mounts::{CacheGuard, CacheRequest};
use crate::copy::clean_rel;
use crate::executor::Build;
use crate::plan::{FromSource, from_source};
use crate::rootfs::Tree;
use crate::state::StageState;
use crate::{BuildError, Result, say};

/// A RUN step's `--mount`s and `--network`, expanded and checked.
pub(crate) struct StepMounts {
    pub mounts: Vec<RunMount>,
    pub network: RunNetwork,
}

/// Reads a RUN's flags; build args are expanded in them first, as BuildKit does.
pub(crate) fn step_mounts(st: &StageState, ins: &Instruction) -> Result<StepMounts> {
    if let Some(s) = ins.flag("security").filter(|s| *s != "sandbox") {
        return Err(BuildError::Invalid(format!(
            "RUN --security={s} is not supported by berth (it needs the security.insecure entitlement)"
        )));
    }
    if !ins.flag_values("device").is_empty() {
        return Err(BuildError::Invalid("RUN --device is not supported by berth".into()));
    }
    let expand = |v: &str| st.expand(v).map_err(|e| e.to_string());
    let mounts = parse_mounts_with(ins.flag_values("mount"), Some(&expand))
        .map_err(|e| BuildError::Invalid(format!("RUN --mount: {e}")))?;
    let network = match ins.flag("network") {
        None => RunNetwork::Default,
        Some(v) => parse_network(&st.expand(v)?).map_err(|e| BuildError::Invalid(format!("RUN --network: {e}")))?,
    };
    Ok(StepMounts { mounts, network })
}

/// The mounts of a step that runs, and what to undo after it.
#[derive(Default)]
pub(crate) struct Active {
    pub mounts: Vec<Mount>,
    /// tmpfs mounts: target → options (`HostConfig.Tmpfs`).
    pub tmpfs: std::collections::BTreeMap<String, String>,
    /// `NAME=value` for the command's environment (`SSH_AUTH_SOCK`).
    pub env: Vec<String>,
    /// Secrets with `env=`: the variable, and the file in the container holding the
    /// value, for the init's `--secret-env` (never the value in a container config).
    pub secret_env: Vec<(String, String)>,
    /// Mount points in the container, for [`remove_stubs`].
    pub targets: Vec<String>,
    /// Whether a secret or SSH socket is involved: the container must not outlive the
    /// step, whatever `--rm` says (its config holds `env=` secrets).
    pub sensitive: bool,
    guards: Vec<CacheGuard>,
    /// The sockets of the step's SSH mounts, relaying to the build's agents.
    relays: Vec<crate::ssh_relay::SshRelay>,
    /// The step's secrets tmpfs, unmounted by [`Active::release`].
    secrets_dir: Option<PathBuf>,
}

impl Active {
    /// Unlocks the caches and removes the secrets' tmpfs.
    pub fn release(&mut self) {
        self.guards.clear();
        self.relays.clear();
        if let Some(dir) = self.secrets_dir.take() {
            let _ = rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::DETACH);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.release();
    }
}

fn bind(source: &Path, target: &str, read_only: bool) -> Mount {
    Mount {
        kind: "bind".into(),
        source: source.display().to_string(),
        target: target.to_string(),
        read_only,
        ..Default::default()
    }
}

impl Build {
    /// The image a `from=` names (a stage's result, a named context's image, or an image,
    /// pulled if missing); `None` for a stage that ended empty (`FROM scratch`).
    async fn mount_from(&self, from: &str, stage: usize) -> Result<Option<Image>> {
        match from_source(&self.df, stage, from)? {
            FromSource::Stage(j) => self.stage_result(j),
            FromSource::Image(r) => match self.opts.named_contexts.get(&r.to_ascii_lowercase()) {
                Some(crate::NamedContext::Image(named)) => Ok(Some(self.base_image(named).await?)),
                Some(crate::NamedContext::Dir(_)) => Err(BuildError::Invalid(format!(
                    "build context {r} is a local directory: only a bind mount can take files from it"
                ))),
                None => Ok(Some(self.base_image(&r).await.map_err(|e| crate::plan::not_a_stage(&self.df, from, &e))?)),
            },
        }
    }

    /// Where a bind mount's files come from: a tree, the path in it, and whether it is
    /// the build context.
    async fn bind_source(&self, from: Option<&str>, source: &str, stage: usize) -> Result<(Tree, String, bool)> {
        let named_dir = from.and_then(|f| match self.opts.named_contexts.get(&f.to_ascii_lowercase()) {
            Some(crate::NamedContext::Dir(dir)) => Some(dir.clone()),
            _ => None,
        });
        let (tree, context) = match (from, named_dir) {
            (None, _) => (Tree::plain(self.ctx.root()), true),
            (Some(_), Some(dir)) => (Tree::plain(dir), false),
            (Some(f), None) => (Tree::of_image(&self.b.images, self.mount_from(f, stage).await?.as_ref())?, false),
        };
        let rel = clean_rel(source)
            .ok_or_else(|| BuildError::Invalid(format!("RUN --mount: source {source:?} is outside of its root")))?;
        let resolved = tree.resolve(&rel, true)?;
        if tree.lookup(&resolved).is_none() {
            let place = from.map_or_else(|| "the build context".to_string(), |f| format!("{f:?}"));
            return Err(BuildError::Invalid(format!("RUN --mount: source {source:?} not found in {place}")));
        }
        Ok((tree, resolved, context))
    }

    /// The cache-key fields of a step's mounts (see the module doc).
    pub(crate) async fn mount_key(&self, m: &StepMounts, stage: usize) -> Result<Vec<(String, String)>> {
        let mut fields = Vec::new();
        if m.network != RunNetwork::Default {
            fields.push(("network".to_string(), format!("{:?}", m.network)));
        }
        for mount in &m.mounts {
            fields.push(("mount".to_string(), mount.describe()));
            match mount {
                RunMount::Bind { from, source, .. } => {
                    let (tree, path, context) = self.bind_source(from.as_deref(), source, stage).await?;
                    let ctx = self.ctx.clone();
                    let digest = tokio::task::spawn_blocking(move || {
                        let known = |host: &Path| if context { ctx.known_digest(host) } else { None };
                        let mut h = Sha256::new();
                        crate::copy::digest_path(&tree, &path, "", &known, &mut h, &mut Default::default())?;
                        Ok::<_, BuildError>(hex::encode(h.finalize()))
                    })
                    .await
                    .map_err(|e| BuildError::Internal(format!("hashing task failed: {e}")))??;
                    fields.push(("mount-source".to_string(), digest));
                }
                RunMount::Cache { from: Some(f), .. } => {
                    let img = self.mount_from(f, stage).await?;
                    fields.push(("mount-from".to_string(), img.map(|i| i.id).unwrap_or_default()));
                }
                _ => {}
            }
        }
        Ok(fields)
    }

    /// Locks (making it if need be) the cache directory a `type=cache` mount names.
    async fn cache_guard(&self, mount: &RunMount, stage: usize) -> Result<CacheGuard> {
        let RunMount::Cache { id, sharing, from, source, mode, uid, gid, .. } = mount else {
            return Err(BuildError::Internal("not a cache mount".into()));
        };
        let seed_from = match from {
            Some(f) => Some(self.bind_source(Some(f), source, stage).await?),
            None => None,
        };
        let from_id = match from {
            Some(f) => self.mount_from(f, stage).await?.map(|i| i.id).unwrap_or_default(),
            None => String::new(),
        };
        let (b, id, source, sharing, mode, uid, gid) =
            (self.b.clone(), id.clone(), source.clone(), *sharing, *mode, *uid, *gid);
        let (out, shown) = (self.out.clone(), id.clone());
        let waiting = move || say(&out, format!(" ---> Waiting for cache mount {shown} (sharing=locked)\n"));
        let gate = {
            let req = CacheRequest { id: &id, sharing, from: &from_id, source: &source, mode, uid, gid };
            b.cache_mounts.gate(&req, waiting.clone()).await
        };
        let mut guard = tokio::task::spawn_blocking(move || {
            let req = CacheRequest { id: &id, sharing, from: &from_id, source: &source, mode, uid, gid };
            let seed = |dir: &Path| match &seed_from {
                Some((tree, path, _)) => copy_tree(tree, path, dir, false),
                None => Ok(()),
            };
            b.cache_mounts.acquire(&req, &seed, &waiting)
        })
        .await
        .map_err(|e| BuildError::Internal(format!("cache mount task failed: {e}")))??;
        guard.gate = gate;
        Ok(guard)
    }

    /// Makes a step's mounts real on the host (see the module doc); `scratch` is the
    /// step's own directory, removed after it.
    pub(crate) async fn mount_prepare(&self, m: &StepMounts, stage: usize, scratch: &Path) -> Result<Active> {
        let mut active = Active::default();
        // The step's caches first, each once and all in one order (id, from, source): a step
        // that mounts one cache twice would wait for itself, and two steps that take two
        // caches in opposite orders would wait for each other, forever.
        let mut caches: BTreeMap<(&str, Option<&str>, &str), &RunMount> = BTreeMap::new();
        for mount in &m.mounts {
            if let RunMount::Cache { id, from, source, sharing, .. } = mount {
                let slot = caches.entry((id.as_str(), from.as_deref(), source.as_str())).or_insert(mount);
                // Mounted twice, the cache is locked if either mount asks for it.
                if *sharing == Sharing::Locked {
                    *slot = mount;
                }
            }
        }
        let mut cache_index = BTreeMap::new();
        for (key, mount) in caches {
            let guard = self.cache_guard(mount, stage).await?;
            cache_index.insert(key, active.guards.len());
            active.guards.push(guard);
        }
        for (i, mount) in m.mounts.iter().enumerate() {
            if let Some(t) = mount.target() {
                active.targets.push(t.to_string());
            }
            match mount {
                RunMount::Bind { target, source, from, rw } => {
                    let (tree, path, context) = self.bind_source(from.as_deref(), source, stage).await?;
                    if context && !rw {
                        active.mounts.push(bind(&self.ctx.root().join(&path), target, true));
                        continue;
                    }
                    // A copy: writes go to it, never to the context or a layer. Read-only
                    // copies of layers may share their files (links), writable ones not.
                    let host = scratch.join(format!("bind{i}"));
                    let link = !rw;
                    tokio::task::spawn_blocking(move || {
                        std::fs::create_dir_all(host.parent().unwrap_or(Path::new("/")))
                            .map_err(|e| BuildError::io("creating the bind mount's copy", e))?;
                        copy_tree(&tree, &path, &host, link)?;
                        Ok::<_, BuildError>(host)
                    })
                    .await
                    .map_err(|e| BuildError::Internal(format!("copy task failed: {e}")))?
                    .map(|host| active.mounts.push(bind(&host, target, !rw)))?;
                }
                RunMount::Cache { target, id, from, source, ro, .. } => {
                    let g = cache_index[&(id.as_str(), from.as_deref(), source.as_str())];
                    let data = active.guards[g].data.clone();
                    active.mounts.push(bind(&data, target, *ro));
                }
                RunMount::Tmpfs { target, size } => {
                    // As BuildKit's: programs may run from it (`exec` lifts the default noexec).
                    let mut options = "exec,mode=1777".to_string();
                    if *size > 0 {
                        options.push_str(&format!(",size={size}"));
                    }
                    active.tmpfs.insert(target.clone(), options);
                }
                RunMount::Secret { id, target, env, required, mode, uid, gid } => {
                    active.sensitive = true;
                    let Some(value) = self.opts.secrets.get(id) else {
                        if *required {
                            return Err(BuildError::Invalid(format!(
                                "secret {id} not found: the build was not given a secret with that id (berth build --secret id={id},src=FILE)"
                            )));
                        }
                        continue;
                    };
                    if let Some(name) = env {
                        let dir = secrets_dir(&mut active, scratch)?;
                        let file = dir.join(format!("env{i}"));
                        write_private(&file, value, 0o444, 0, 0)?;
                        // Under /dev (a tmpfs of the container's own): no mount point in the rootfs.
                        let inside = format!("/dev/.berth-secret-env{i}");
                        active.mounts.push(bind(&file, &inside, true));
                        active.secret_env.push((name.clone(), inside));
                    }
                    if let Some(target) = target {
                        let dir = secrets_dir(&mut active, scratch)?;
                        let file = dir.join(format!("secret{i}"));
                        write_private(&file, value, *mode, *uid, *gid)?;
                        active.mounts.push(bind(&file, target, true));
                    }
                }
                RunMount::Ssh { id, target, required, mode, uid, gid } => {
                    active.sensitive = true;
                    match self.opts.ssh.get(id) {
                        Some(sock) => {
                            // As BuildKit: the first agent is the command's SSH_AUTH_SOCK.
                            if !active.env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")) {
                                active.env.push(format!("SSH_AUTH_SOCK={target}"));
                            }
                            // A socket of the mount's own, as its uid, gid and mode say.
                            let dir = secrets_dir(&mut active, scratch)?;
                            let relay = crate::ssh_relay::SshRelay::start(
                                sock,
                                dir.join(format!("ssh{i}.sock")),
                                *mode,
                                *uid,
                                *gid,
                            )?;
                            active.mounts.push(bind(relay.socket(), target, false));
                            active.relays.push(relay);
                        }
                        None if *required => {
                            return Err(BuildError::Invalid(format!(
                                "no SSH agent for id {id:?}: the build was not given one (--ssh {id}[=SOCKET])"
                            )));
                        }
                        None => {}
                    }
                }
            }
        }
        Ok(active)
    }
}

/// The step's secrets directory: a small tmpfs, so a secret never reaches a disk.
fn secrets_dir(active: &mut Active, scratch: &Path) -> Result<PathBuf> {
    if let Some(d) = &active.secrets_dir {
        return Ok(d.clone());
    }
    let dir = scratch.join("secrets");
    std::fs::create_dir_all(&dir).map_err(|e| BuildError::io("creating the secrets directory", e))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| BuildError::io("chmod of the secrets directory", e))?;
    use rustix::mount::{MountFlags, mount};
    mount(
        "tmpfs",
        &dir,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        Some(c"mode=0700,size=16m"),
    )
    .map_err(|e| BuildError::io("mounting the secrets tmpfs", e.into()))?;
    active.secrets_dir = Some(dir.clone());
    Ok(dir)
}

fn write_private(file: &Path, value: &[u8], mode: u32, uid: u32, gid: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| BuildError::io("writing a secret", e))?;
    f.write_all(value).map_err(|e| BuildError::io("writing a secret", e))?;
    std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(|e| BuildError::io("chown of a secret", e))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| BuildError::io("chmod of a secret", e))
}

/// Copies `path` of `tree` (a file or a directory's contents) to `host`, keeping owners
/// and modes. With `link`, root-owned files are hard-linked (for read-only use only).
fn copy_tree(tree: &Tree, path: &str, host: &Path, link: bool) -> Result<()> {
    let keep = |m: &std::fs::Metadata| (m.uid(), m.gid());
    let is_dir = tree.lookup(path).is_some_and(|f| f.meta.is_dir());
    if !is_dir {
        return crate::place::copy_path(tree, path, host, &keep, None, link, &mut Vec::new());
    }
    std::fs::create_dir_all(host).map_err(|e| BuildError::io(format!("creating {}", host.display()), e))?;
    crate::place::copy_path(tree, path, host, &keep, None, link, &mut Vec::new())
}

/// Removes what the runtime made in the rootfs only to mount on: an empty file or
/// directory at a mount target the image lacks, and the empty directories it made on the
/// way. `upper` is the container's upper directory, `lower` the step's image.
pub(crate) fn remove_stubs(upper: &Path, targets: &[String], lower: &Tree) {
    for t in targets {
        let mut rel = t.trim_matches('/').to_string();
        while !rel.is_empty() {
            if lower.lookup(&rel).is_some() {
                break;
            }
            let Some(p) = crate::rootfs::in_upper(upper, &rel) else { break };
            let Ok(m) = std::fs::symlink_metadata(&p) else { break };
            let removed = if m.is_dir() {
                std::fs::remove_dir(&p).is_ok()
            } else {
                m.is_file() && m.len() == 0 && std::fs::remove_file(&p).is_ok()
            };
            if !removed {
                break;
            }
            rel = rel.rsplit_once('/').map(|(parent, _)| parent.to_string()).unwrap_or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step that swaps a mount target's parent for a symlink to a host directory: the
    /// stubs are not looked for through it (the daemon walks the host's tree).
    #[test]
    fn stubs_are_never_removed_through_a_symlink() {
        let t = tempfile::tempdir().unwrap();
        let (upper, lower, victim) = (t.path().join("upper"), t.path().join("lower"), t.path().join("victim"));
        std::fs::create_dir_all(&lower).unwrap();
        std::fs::create_dir_all(victim.join("emptydir")).unwrap();
        std::fs::write(victim.join("emptyfile"), "").unwrap();
        std::fs::create_dir_all(&upper).unwrap();
        std::os::unix::fs::symlink(&victim, upper.join("a")).unwrap();
        let tree = Tree::new(vec![lower]);
        remove_stubs(&upper, &["/a/emptydir".into(), "/a/emptyfile".into()], &tree);
        assert!(victim.join("emptydir").exists() && victim.join("emptyfile").exists());
        // Control: the same names under a real directory go.
        std::fs::remove_file(upper.join("a")).unwrap();
        std::fs::create_dir_all(upper.join("a/emptydir")).unwrap();
        std::fs::write(upper.join("a/emptyfile"), "").unwrap();
        remove_stubs(&upper, &["/a/emptydir".into(), "/a/emptyfile".into()], &Tree::new(vec![t.path().join("lower")]));
        assert!(!upper.join("a").exists());
    }

    #[test]
    fn stubs_go_but_what_the_step_made_stays() {
        let t = tempfile::tempdir().unwrap();
        let (upper, lower) = (t.path().join("upper"), t.path().join("lower"));
        std::fs::create_dir_all(lower.join("run")).unwrap();
        std::fs::create_dir_all(upper.join("run/secrets")).unwrap();
        std::fs::write(upper.join("run/secrets/tok"), "").unwrap();
        std::fs::create_dir_all(upper.join("cache/sub")).unwrap();
        std::fs::create_dir_all(upper.join("made")).unwrap();
        std::fs::write(upper.join("made/file"), "kept").unwrap();
        let tree = Tree::new(vec![lower]);
        remove_stubs(&upper, &["/run/secrets/tok".into(), "/cache/sub".into(), "/made".into()], &tree);
        assert!(!upper.join("run/secrets").exists(), "the secret's stub and its new parent go");
        assert!(upper.join("run").exists(), "a directory the image has stays");
        assert!(!upper.join("cache").exists());
        assert!(upper.join("made/file").exists(), "a target with content is the step's work");
    }
}
