//! The image builder: a Dockerfile and a build context become an image.
//!
//! # Pipeline
//!
//! ```text
//!  context tar ──► context::Context (unpacked, .dockerignore applied, files hashed on demand)
//!  or a synced copy (sync: only changed files sent and hashed, kept between builds)
//!  Dockerfile  ──► berth_dockerfile::parse ──► plan::Plan (stages the target needs, step count)
//!                                                  │
//!                       executor: one stage after another, one step after another
//!                                                  │
//!          step key = cache::StepKey(parent key, instruction after substitution,
//!                                    build args it sees, digests of the files it reads)
//!                      │ hit: the cached image          │ miss: execute, commit, record
//! ```
//!
//! # Contract
//!
//! - **Every step is an image.** As in Docker's classic builder, each instruction after
//!   `FROM` commits an image whose parent is the previous step's, with one history row
//!   (`empty_layer` for instructions that only change the config). The final image is the
//!   target stage's last step; intermediate images stay (untagged, hidden by `images`)
//!   because they are the cache.
//! - **The cache is content-addressed.** A step's key ([`cache::StepKey`]) is a SHA-256 over
//!   its parent's key, the instruction as it reads after variable substitution, the build
//!   args in scope (for RUN, whose environment they are), and for COPY/ADD the digest of
//!   every source file's path, type, mode and content, never its mtime. The index (key →
//!   image ID) is in the metadata database, so it survives restarts; an entry whose image
//!   is gone is a miss. `no_cache` executes every step (and records the new images).
//! - **RUN runs in a container** made by the container service from the step's image and
//!   config, with its output streamed; the container's upper directory becomes the layer
//!   (minus anything under the image's VOLUMEs, which Docker discards) and the container
//!   is removed whatever happens. `RUN --mount` (cache, bind, tmpfs, secret, ssh) and
//!   `RUN --network` are BuildKit's Dockerfile frontend 1.x ([`run_mounts`]); what is
//!   mounted never lands in the layer, and secrets never in anything the build keeps
//!   ([`secrets`]).
//! - **Layers are flushed once per build**, after it, not per step: each step's layer is
//!   published without waiting for the disk (`Snapshotter::commit_layer_deferred`).
//! - **Nothing is tagged unless the whole build succeeds**, and a failed build leaves no
//!   container behind. Errors name the instruction in Docker's words.
//! - **Output** is a sequence of [`Event`]s: the lines Docker's classic builder prints
//!   (`Step 1/5 : FROM busybox`, ` ---> Using cache`, ` ---> 1a2b3c4d5e6f`), the output of
//!   RUN steps, and the final image ID; the API layer turns them into the JSON stream.

pub mod cache;
mod cache_from;
pub mod cache_mounts;
pub mod context;
mod copy;
mod executor;
mod fetch;
mod git;
mod inline_cache;
mod known_digests;
mod named;
mod place;
pub mod plan;
pub mod platform;
pub mod rootfs;
mod run;
mod run_mounts;
pub mod secrets;
mod ssh_relay;
mod state;
pub mod sync;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use berth_api::{ErrorKind, HasKind};
use berth_container::ContainerService;
use berth_image::ImageStore;
use tokio::sync::mpsc;

pub use cache::BuildCache;
pub use context::Context;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Something the user gave (Dockerfile, flags, context) is wrong.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The state the request relied on changed meanwhile (a synced context).
    #[error("{0}")]
    Conflict(String),
    /// A RUN step's command failed.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i64 },
    #[error(transparent)]
    Dockerfile(#[from] berth_dockerfile::DockerfileError),
    #[error(transparent)]
    Image(#[from] berth_image::ImageError),
    #[error(transparent)]
    Container(#[from] berth_container::ContainerError),
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error(transparent)]
    Archive(#[from] berth_archive::ArchiveError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0}")]
    Internal(String),
}

impl BuildError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BuildError::Io { context: context.into(), source }
    }

    /// The exit code Docker reports with a failed RUN (the CLI exits with it).
    pub fn code(&self) -> Option<i64> {
        match self {
            BuildError::RunFailed { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl HasKind for BuildError {
    fn kind(&self) -> ErrorKind {
        match self {
            BuildError::Invalid(_) | BuildError::RunFailed { .. } => ErrorKind::InvalidArgument,
            BuildError::NotFound(_) => ErrorKind::NotFound,
            BuildError::Conflict(_) => ErrorKind::Conflict,
            BuildError::Dockerfile(e) => e.kind(),
            BuildError::Image(e) => e.kind(),
            BuildError::Container(e) => e.kind(),
            BuildError::Store(e) => e.kind(),
            BuildError::Archive(e) => e.kind(),
            BuildError::Io { source, .. } => HasKind::kind(source),
            BuildError::Internal(_) => ErrorKind::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, BuildError>;

/// What the build reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The builder's own text for the user (a line with its newline).
    Stream(String),
    /// What a RUN step's process wrote, kept apart from the builder's lines: it is anyone's
    /// text, and must never be read as the builder's (a `Step 2/2 : …` it prints is output).
    Output { stderr: bool, data: Vec<u8> },
    /// The built image's ID (`sha256:…`), sent once before `Successfully built`.
    Built(String),
}

/// How much of a RUN step's output is passed on by default. Docker's classic builder passes
/// it all, at the client's pace; berth's stages run in parallel and their output waits in
/// memory for its turn, so it is bounded (BuildKit clips at 2 MiB).
pub const STEP_LOG_MAX: usize = 64 << 20;

/// Where events go. Sending never blocks the build; a client that went away is ignored.
pub type Sink = mpsc::UnboundedSender<Event>;

pub(crate) fn say(out: &Sink, s: impl Into<String>) {
    let _ = out.send(Event::Stream(s.into()));
}

/// One build's settings (the `POST /build` query).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `-t`: references to tag the result with, already validated.
    pub tags: Vec<String>,
    /// Path of the Dockerfile inside the context (`Dockerfile` by default).
    pub dockerfile: String,
    /// `--build-arg`: a name without a value takes it from... nowhere on the daemon side:
    /// the client resolves `--build-arg NAME` from its environment, so `None` is unset.
    pub build_args: BTreeMap<String, Option<String>>,
    pub no_cache: bool,
    /// `--no-cache-filter` (BuildKit's): the stages, by name, whose steps all run anew.
    pub no_cache_stages: BTreeSet<String>,
    /// How much of a RUN step's output is passed on (0: [`STEP_LOG_MAX`]); the rest is
    /// dropped after one line saying so.
    pub step_log_max: usize,
    /// `--target`: the stage to stop at (name or index); the last stage by default.
    pub target: Option<String>,
    /// `--label`: applied by a LABEL step appended to the target stage, as Docker does.
    pub labels: BTreeMap<String, String>,
    /// `--network` for RUN steps (`bridge` when empty).
    pub network_mode: String,
    /// `--add-host` entries for RUN steps (`host:ip`).
    pub extra_hosts: Vec<String>,
    /// `--cache-from`: when given, only these images and their ancestors can be cache
    /// hits (names that do not resolve are ignored), as in the classic builder.
    pub cache_from: Vec<String>,
    /// Print each step's cache key and what went into it (berth's own option).
    pub debug_cache_key: bool,
    /// `--pull`: pull every `FROM` image even when the daemon has it (a missing one is
    /// always pulled).
    pub pull: bool,
    /// The `X-Registry-Config` header: credentials for the registries `FROM` pulls from.
    pub registry_config: Option<String>,
    /// `--rm=false` (`rm=0` without `forcerm`): RUN steps' containers are kept, as Docker
    /// keeps them, instead of removed after each step.
    pub keep_containers: bool,
    /// `--platform`: must be the host's ([`platform`]); empty is the host's.
    pub platform: String,
    /// `--secret`: what `RUN --mount=type=secret` mounts, by id.
    pub secrets: secrets::Secrets,
    /// `--ssh`: agent sockets `RUN --mount=type=ssh` mounts, by id.
    pub ssh: secrets::SshAgents,
    /// `--cache-to type=inline` (BuildKit's): the result's config carries the cache keys
    /// of the steps that made it ([`inline_cache`]).
    pub inline_cache: bool,
    /// BuildKit's `--cache-from` (already fetched): images, by ID or name, whose inline
    /// cache may supply hits. Unlike [`BuildOptions::cache_from`], the daemon's own cache
    /// keeps working beside them.
    pub cache_imports: Vec<String>,
    /// `--build-context NAME=…` (BuildKit's named contexts), by lowercased name: what
    /// `FROM NAME`, a stage named NAME and `COPY --from=NAME` take instead.
    pub named_contexts: BTreeMap<String, NamedContext>,
    /// `build --check` (berth's CLI): run the build checks and report them in full
    /// ([`berth_dockerfile::lint`]) instead of building. Findings fail the "build".
    pub check_only: bool,
}

/// What a named build context is.
#[derive(Debug, Clone, PartialEq)]
pub enum NamedContext {
    /// `docker-image://REF`: an image, pulled if the daemon lacks it.
    Image(String),
    /// A local directory of the client's, received (only `COPY --from` reads it).
    Dir(PathBuf),
}

/// Daemon-wide builder settings.
#[derive(Debug, Clone)]
pub struct BuilderConfig {
    /// Scratch space for contexts and layers being assembled (on the data root's filesystem).
    pub scratch: PathBuf,
    /// Where contexts synced by berth's CLI are kept between builds ([`sync`]).
    pub contexts: PathBuf,
    /// Cache size bound in bytes (0 = unbounded): after a build, least recently used
    /// entries whose images nothing else needs are evicted down to it.
    pub cache_max_bytes: u64,
    /// One empty file per RUN container a build is using, named by its ID: what a daemon
    /// that died mid-build left is removed at the next start ([`Builder::reap_interrupted`]).
    pub run_containers: PathBuf,
    /// The directories of `RUN --mount=type=cache` ([`cache_mounts`]), kept between builds.
    pub cache_mounts: PathBuf,
}

/// The builder service: shared by every build the daemon runs.
pub struct Builder {
    pub images: Arc<ImageStore>,
    pub containers: Arc<ContainerService>,
    /// Pulls `FROM` images the daemon lacks.
    pub distribution: Arc<berth_distribution::Distribution>,
    db: Arc<berth_store::db::Db>,
    pub cache: BuildCache,
    pub cache_mounts: cache_mounts::CacheMounts,
    pub contexts: sync::ContextStore,
    pub config: BuilderConfig,
}

impl Builder {
    pub fn new(
        images: Arc<ImageStore>,
        containers: Arc<ContainerService>,
        distribution: Arc<berth_distribution::Distribution>,
        db: Arc<berth_store::db::Db>,
        config: BuilderConfig,
    ) -> Result<Arc<Builder>> {
        std::fs::create_dir_all(&config.scratch)
            .map_err(|e| BuildError::io(format!("creating {}", config.scratch.display()), e))?;
        // Scratch space left by a daemon that died mid-build.
        if let Ok(rd) = std::fs::read_dir(&config.scratch) {
            for e in rd.flatten() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        std::fs::create_dir_all(&config.contexts)
            .map_err(|e| BuildError::io(format!("creating {}", config.contexts.display()), e))?;
        std::fs::create_dir_all(&config.run_containers)
            .map_err(|e| BuildError::io(format!("creating {}", config.run_containers.display()), e))?;
        let contexts = sync::ContextStore::new(config.contexts.clone());
        let cache_mounts = cache_mounts::CacheMounts::new(config.cache_mounts.clone())?;
        Ok(Arc::new(Builder {
            images,
            containers,
            distribution,
            cache: BuildCache::new(db.clone()),
            db,
            cache_mounts,
            contexts,
            config,
        }))
    }

    /// Notes that a build runs a step in container `id` (see [`BuilderConfig::run_containers`]).
    pub(crate) fn remember_build_container(&self, id: &str) {
        let _ = std::fs::write(self.config.run_containers.join(id), b"");
    }

    /// The build is done with container `id` (removed, or kept by `--rm=false`).
    pub(crate) fn forget_build_container(&self, id: &str) {
        let _ = std::fs::remove_file(self.config.run_containers.join(id));
    }

    /// Removes the RUN containers of builds a daemon crash interrupted, running or not, as
    /// a finished build removes its own; call once the containers are recovered. Returns
    /// the IDs removed.
    pub async fn reap_interrupted(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(&self.config.run_containers) else { return Vec::new() };
        let mut removed = Vec::new();
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let gone = match self.containers.remove(&id, true, true).await {
                Ok(_) => {
                    removed.push(id.clone());
                    true
                }
                Err(e) => e.kind() == ErrorKind::NotFound,
            };
            if gone {
                self.forget_build_container(&id);
            }
        }
        removed
    }

    /// Unpacks a build context (a tar, possibly compressed) for [`Builder::build`]. Blocking.
    pub fn open_context(&self, input: impl std::io::Read, dockerfile: &str) -> Result<Context> {
        Context::extract(input, &self.config.scratch, dockerfile)
    }

    /// Pulls `reference` for a `FROM`, reporting progress as build output lines.
    pub(crate) async fn pull_base(
        &self,
        reference: &berth_image::Reference,
        registry_config: Option<&str>,
        out: &Sink,
    ) -> Result<()> {
        use berth_distribution::AuthConfig;
        use berth_distribution::pull::{PullOptions, Stores};
        let opts = PullOptions {
            reference: reference.clone(),
            all_tags: false,
            platform: None,
            auth: AuthConfig::for_registry(registry_config, &reference.domain),
        };
        let stores = Stores { images: self.images.clone(), db: self.db.clone() };
        let (progress, mut rx) = berth_distribution::progress::Progress::channel();
        let out2 = out.clone();
        let relay = tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                let line = match (&m.id, &m.status) {
                    (Some(id), Some(st)) if m.progress_detail.is_none() => format!("{id}: {st}\n"),
                    (None, Some(st)) => format!("{st}\n"),
                    _ => continue,
                };
                say(&out2, line);
            }
        });
        let r = self.distribution.pull(&stores, &opts, &progress).await;
        drop(progress);
        let _ = relay.await;
        r.map_err(|e| {
            BuildError::NotFound(format!(
                "pull access denied for {}, repository does not exist or may require 'docker login': {e}",
                reference.familiar_repository()
            ))
        })
    }

    /// Fetches the image a build imports as cache (BuildKit's `--cache-from
    /// type=registry,ref=…`) into the store under no name; returns its ID.
    pub async fn fetch_cache_source(
        &self,
        reference: &berth_image::Reference,
        registry_config: Option<&str>,
    ) -> Result<String> {
        use berth_distribution::AuthConfig;
        use berth_distribution::pull::Stores;
        let auth = AuthConfig::for_registry(registry_config, &reference.domain);
        let stores = Stores { images: self.images.clone(), db: self.db.clone() };
        let (progress, mut rx) = berth_distribution::progress::Progress::channel();
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let r = self.distribution.fetch_unnamed(&stores, reference, &auth, &progress).await;
        drop(progress);
        let _ = drain.await;
        r.map_err(|e| BuildError::NotFound(format!("importing cache from {}: {e}", reference.familiar())))
    }

    /// Fetches a context from a URL (`build URL`, the API's `remote=`): a git repository is
    /// cloned ([`git`]); an http(s) download is a tar, possibly compressed, or else the
    /// text of a Dockerfile, as Docker reads them.
    pub async fn open_remote_context(&self, url: &str, dockerfile: &str) -> Result<Context> {
        if git::is_git_url(url) {
            let dir = self.config.scratch.join(format!("ctx-{}", &berth_api::ids::random_id()[..16]));
            let work = self.config.scratch.join(format!("git-{}", &berth_api::ids::random_id()[..16]));
            std::fs::create_dir_all(&dir).map_err(|e| BuildError::io("creating the context directory", e))?;
            let cloned = git::clone_into(url, &work, &dir.join("root"), git::Credentials::Host).await;
            let _ = std::fs::remove_dir_all(&work);
            if let Err(e) = cloned {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
            let name = dockerfile.to_string();
            return tokio::task::spawn_blocking(move || Context::prepared(dir, &name))
                .await
                .map_err(|e| BuildError::Internal(format!("context task failed: {e}")))?;
        }
        if !fetch::is_url(url) {
            return Err(BuildError::Invalid(format!(
                "unable to prepare context: {url:?} is neither an http(s) URL nor a git repository"
            )));
        }
        let dir = self.config.scratch.join(format!("remote-{}", &berth_api::ids::random_id()[..16]));
        std::fs::create_dir_all(&dir).map_err(|e| BuildError::io("creating download space", e))?;
        let file = dir.join("context");
        let downloaded = fetch::get(url, &file).await;
        let (scratch, dockerfile, url) = (self.config.scratch.clone(), dockerfile.to_string(), url.to_string());
        let opened = match downloaded {
            Err(e) => Err(e),
            Ok(ct) => tokio::task::spawn_blocking(move || {
                context::open_download(&file, ct.as_deref(), &url, &scratch, &dockerfile)
            })
            .await
            .map_err(|e| BuildError::Internal(format!("context task failed: {e}")))?,
        };
        let _ = std::fs::remove_dir_all(&dir);
        opened
    }

    /// Updates the synced context `key` from `input` (framed manifest, then a tar of what
    /// changed) and opens it for [`Builder::build`], with the secrets the client sent
    /// along. Blocking.
    pub fn open_synced_context(
        &self,
        key: &str,
        input: impl std::io::Read,
        dockerfile: &str,
    ) -> Result<(Context, secrets::Secrets, secrets::SshAgents)> {
        self.contexts.open(key, input, dockerfile)
    }

    /// Runs a build; returns the image ID. Events describe progress; the returned error
    /// is what the client is told last.
    pub async fn build(self: &Arc<Self>, ctx: Arc<Context>, opts: BuildOptions, out: Sink) -> Result<String> {
        let result = executor::Build::new(self.clone(), ctx, opts, out).run().await;
        // The steps' layers were published without waiting for the disk; one flush for
        // the whole build, in the background (a host crash before it ends is caught by
        // the verification at the next start).
        let images = self.images.clone();
        tokio::task::spawn_blocking(move || images.snapshots().sync_pending());
        let id = result?;
        if self.config.cache_max_bytes > 0 {
            let b = self.clone();
            let _ = tokio::task::spawn_blocking(move || b.cache.evict(&b.images, b.config.cache_max_bytes)).await;
        }
        Ok(id)
    }

    /// `builder prune`: forgets cache entries and deletes the images that only the cache
    /// kept (untagged, unused, no children). With `all`, every entry is forgotten; without,
    /// only those whose image is no longer part of a tagged image's history. Cache mounts
    /// no build is using go either way, as BuildKit prunes them. Returns the deleted image
    /// IDs and cache mount names, and the bytes reclaimed.
    pub fn prune(
        &self,
        all: bool,
        users: &dyn Fn(&str) -> Vec<berth_image::ContainerUse>,
    ) -> Result<(Vec<String>, i64)> {
        let (mut deleted, mut reclaimed) = self.cache.prune(&self.images, all, users)?;
        let (mounts, freed) = self.cache_mounts.prune();
        deleted.extend(mounts);
        reclaimed += freed;
        if all {
            reclaimed += self.contexts.prune();
        }
        Ok((deleted, reclaimed))
    }
}
