//! Runs a planned build: stages in order, each instruction a cached step.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use berth_api::ids::short_id;
use berth_dockerfile::{Dockerfile, Instruction, Line};
use berth_image::Image;
use berth_image::commit::{CommitOptions, NewLayer};
use tokio::sync::mpsc;

use crate::cache::{StepKey, from_key};
use crate::context::Context;
use crate::plan::{Base, Plan};
use crate::state::{StageState, apply_arg, apply_config};
use crate::{BuildError, BuildOptions, Builder, Event, Result, Sink, say};

#[derive(Clone)]
pub(crate) struct Build {
    pub b: Arc<Builder>,
    pub ctx: Arc<Context>,
    pub opts: BuildOptions,
    pub out: Sink,
    pub df: Dockerfile,
    pub plan: Plan,
    step: usize,
    /// Each finished stage's image (`None`: a scratch stage without steps).
    pub results: BTreeMap<usize, Option<Image>>,
    /// ARG names a reached ARG declared.
    consumed: BTreeSet<String>,
    /// With `--cache-from`: the only images that may be cache hits.
    cache_sources: Option<BTreeSet<String>>,
    /// With `--cache-from`: the images whose histories may supply hits ([`crate::cache_from`]).
    pub history_sources: Vec<Image>,
    /// Imported images with an inline cache, and its step keys ([`crate::inline_cache`]).
    pub inline_sources: Vec<(Image, BTreeSet<String>)>,
    /// Each finished stage's last key and its steps, for the stages based on it.
    ends: BTreeMap<usize, (String, Vec<crate::inline_cache::Step>)>,
}

/// What a step does when the cache does not have it.
pub(crate) enum Work {
    /// Commit the state's config with no layer.
    Config,
    /// Commit this directory as the step's layer.
    Layer(berth_store::snapshot::Staging),
}

impl Build {
    /// The result of stage `j`, which this stage needs (its plan made sure it ran first);
    /// `None` for a stage that ended empty (`FROM scratch`).
    pub(crate) fn stage_result(&self, j: usize) -> Result<Option<Image>> {
        self.results
            .get(&j)
            .cloned()
            .ok_or_else(|| BuildError::Internal(format!("stage {j} was needed before it was built")))
    }

    pub fn new(b: Arc<Builder>, ctx: Arc<Context>, opts: BuildOptions, out: Sink) -> Build {
        Build {
            b,
            ctx,
            opts,
            out,
            df: Dockerfile { directives: Default::default(), args_before_from: Vec::new(), stages: Vec::new() },
            plan: Plan {
                meta_args: BTreeMap::new(),
                bases: Vec::new(),
                stages: Vec::new(),
                deps: BTreeMap::new(),
                target: 0,
                total_steps: 0,
            },
            step: 0,
            results: BTreeMap::new(),
            consumed: BTreeSet::new(),
            cache_sources: None,
            history_sources: Vec::new(),
            inline_sources: Vec::new(),
            ends: BTreeMap::new(),
        }
    }

    /// The build checks, on the file as written: with `--check`, their full report (then
    /// `true`: nothing is built); otherwise the short list, and an error instead of a build
    /// when the configuration says `error=true`.
    fn run_checks(&self) -> Result<bool> {
        use berth_dockerfile::lint;
        let arg = self.opts.build_args.get(lint::CHECK_BUILD_ARG).cloned().flatten();
        let config = lint::CheckConfig::for_build(&self.df, arg.as_deref()).map_err(BuildError::Invalid)?;
        // Base images already here lend their variables to the check of undefined ones.
        let image_env = |name: &str| {
            let img = self.b.images.resolve(name).ok()?;
            Some(
                img.config
                    .config
                    .env
                    .iter()
                    .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_string())
                    .collect(),
            )
        };
        let warnings = lint::check_with_images(&self.df, &config, &image_env);
        if self.opts.check_only {
            say(&self.out, lint::detailed(&warnings, &self.ctx.dockerfile, &self.opts.dockerfile));
            if !warnings.is_empty() {
                return Err(BuildError::Invalid(lint::violation_error(&warnings)));
            }
            return Ok(true);
        }
        if !warnings.is_empty() {
            say(&self.out, lint::summary(&warnings));
            if config.error {
                return Err(BuildError::Invalid(lint::violation_error(&warnings)));
            }
        }
        Ok(false)
    }

    pub async fn run(mut self) -> Result<String> {
        self.df = berth_dockerfile::parse(&self.ctx.dockerfile)?;
        if self.run_checks()? {
            return Ok(String::new());
        }
        crate::named::apply(&mut self.df, &self.opts)?;
        if let Some(s) = &self.df.directives.syntax {
            berth_dockerfile::check_syntax(s).map_err(BuildError::Invalid)?;
        }
        crate::platform::check(&self.opts.platform, "--platform")?;
        if !self.opts.cache_from.is_empty() {
            let mut allowed = BTreeSet::new();
            for name in &self.opts.cache_from {
                if let Ok(img) = self.b.images.resolve(name) {
                    self.history_sources.push(img);
                }
                let mut cur = self.b.images.resolve(name).ok();
                while let Some(img) = cur {
                    if !allowed.insert(img.id.clone()) {
                        break;
                    }
                    cur = self.b.images.get(&img.meta.parent);
                }
            }
            self.cache_sources = Some(allowed);
        }
        // Both kinds of `--cache-from` image may carry an inline cache.
        for name in self.opts.cache_imports.iter().chain(&self.opts.cache_from) {
            let Ok(img) = self.b.images.resolve(name) else { continue };
            let Ok(raw) = self.b.images.content().read(&img.id) else { continue };
            let keys = crate::inline_cache::keys(&raw);
            if !keys.is_empty() && !self.inline_sources.iter().any(|(i, _)| i.id == img.id) {
                self.inline_sources.push((img, keys));
            }
        }
        let extra = usize::from(!self.opts.labels.is_empty());
        self.plan = Plan::new(&self.df, self.opts.target.as_deref(), &self.opts.build_args, extra)?;
        if let Some(unknown) =
            self.opts.no_cache_stages.iter().find(|n| !self.df.stages.iter().any(|s| s.name.as_ref() == Some(*n)))
        {
            return Err(BuildError::Invalid(format!("--no-cache-filter: the Dockerfile has no stage named {unknown}")));
        }
        for line in self.df.args_before_from.clone() {
            self.step_line(&line.instruction.original);
            self.consumed.extend(self.plan.meta_args.keys().cloned());
        }
        self.run_stages().await?;
        let image = self
            .results
            .get(&self.plan.target)
            .cloned()
            .flatten()
            .ok_or_else(|| BuildError::Invalid("No image was generated. Is your Dockerfile empty?".into()))?;
        let image = match self.ends.get(&self.plan.target) {
            Some((_, steps)) if self.opts.inline_cache => {
                let (images, steps) = (self.b.images.clone(), steps.clone());
                tokio::task::spawn_blocking(move || crate::inline_cache::with_inline_cache(&images, &image, &steps))
                    .await
                    .map_err(|e| BuildError::Internal(format!("inline cache task failed: {e}")))??
            }
            _ => image,
        };
        let provided = self.opts.build_args.keys().map(String::as_str);
        if let Some(w) = berth_dockerfile::build_args::unused_warning(&berth_dockerfile::build_args::unused(
            provided,
            &self.consumed,
        )) {
            say(&self.out, format!("{w}\n"));
        }
        let _ = self.out.send(Event::Built(image.id.clone()));
        say(&self.out, format!("Successfully built {}\n", short_id(&image.id)));
        for t in &self.opts.tags {
            self.b.images.tag(&image.id, t)?;
            let shown =
                berth_image::Reference::parse(t).map(|r| r.with_default_tag().familiar()).unwrap_or_else(|_| t.clone());
            say(&self.out, format!("Successfully tagged {shown}\n"));
        }
        Ok(image.id)
    }

    /// Runs the planned stages, each as soon as the stages it needs are done; their output
    /// is forwarded in file order. After a failure no new stage starts, the running ones
    /// finish (so no RUN container is abandoned), and the first failing stage's error is
    /// returned.
    async fn run_stages(&mut self) -> Result<()> {
        let order = self.plan.stages.clone();
        let mut offsets = BTreeMap::new();
        let mut n = self.step;
        for &s in &order {
            offsets.insert(s, n);
            n += 1
                + self.df.stages[s].instructions.len()
                + usize::from(s == self.plan.target && !self.opts.labels.is_empty());
        }
        let mut senders = BTreeMap::new();
        let mut receivers = Vec::new();
        for &s in &order {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.insert(s, tx);
            receivers.push(rx);
        }
        let out = self.out.clone();
        let forward = tokio::spawn(async move {
            for mut rx in receivers {
                while let Some(ev) = rx.recv().await {
                    let _ = out.send(ev);
                }
            }
        });
        let mut pending = order;
        let mut running = tokio::task::JoinSet::new();
        let mut failed: Option<(usize, BuildError)> = None;
        loop {
            if failed.is_none() {
                let ready: Vec<usize> = pending
                    .iter()
                    .copied()
                    .filter(|s| self.plan.deps[s].iter().all(|d| self.results.contains_key(d)))
                    .collect();
                for s in ready {
                    pending.retain(|p| *p != s);
                    let mut stage = self.clone();
                    stage.out = senders.remove(&s).unwrap_or_else(|| mpsc::unbounded_channel().0);
                    stage.step = offsets[&s];
                    stage.consumed = BTreeSet::new();
                    running.spawn(async move {
                        let r = stage.run_stage(s).await;
                        let end = stage.ends.remove(&s);
                        (s, r, stage.results.remove(&s).flatten(), stage.consumed, end)
                    });
                }
            }
            let Some(joined) = running.join_next().await else { break };
            let (s, r, image, consumed, end) = match joined {
                Ok(x) => x,
                Err(e) => (
                    usize::MAX,
                    Err(BuildError::Internal(format!("build stage task failed: {e}"))),
                    None,
                    BTreeSet::new(),
                    None,
                ),
            };
            match r {
                Ok(()) => {
                    self.results.insert(s, image);
                    if let Some(end) = end {
                        self.ends.insert(s, end);
                    }
                    self.consumed.extend(consumed);
                }
                Err(e) => {
                    if failed.as_ref().is_none_or(|(i, _)| s < *i) {
                        failed = Some((s, e));
                    }
                }
            }
        }
        drop(senders);
        let _ = forward.await;
        self.step = n;
        match failed {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    fn step_line(&mut self, original: &str) {
        self.step += 1;
        say(&self.out, format!("Step {}/{} : {}\n", self.step, self.plan.total_steps, original));
    }

    async fn run_stage(&mut self, s: usize) -> Result<()> {
        let stage = self.df.stages[s].clone();
        if stage.name.as_ref().is_some_and(|n| self.opts.no_cache_stages.contains(n)) {
            // This stage's own copy of the options: the other stages keep the cache.
            self.opts.no_cache = true;
        }
        let from_line = match &stage.platform {
            Some(p) => format!("FROM --platform={p} {}", stage.base),
            None => format!("FROM {}", stage.base),
        };
        let from_line = match &stage.name {
            Some(n) => format!("{from_line} AS {n}"),
            None => from_line,
        };
        self.step_line(&from_line);
        if let Some(p) = &stage.platform {
            let meta = |k: &str| self.plan.meta_args.get(k).cloned().flatten();
            let p = berth_dockerfile::expand::expand(p, &meta, self.df.directives.escape)?;
            crate::platform::check(&p, "FROM --platform=")?;
        }
        let base = match &self.plan.bases[s] {
            Base::Scratch => None,
            Base::Stage(j) => self.stage_result(*j)?,
            Base::Image(r) => Some(self.base_image(r).await?),
        };
        if let Some(img) = &base {
            say(&self.out, format!(" ---> {}\n", short_id(&img.id)));
        }
        // A stage based on another continues its key and steps, so that its keys do not
        // depend on the other's image ID (a restored image has a new one).
        let (key, trail) = match &self.plan.bases[s] {
            Base::Stage(j) => self.ends.get(j).cloned().unwrap_or_default(),
            _ => (from_key(base.as_ref().map(|i| i.id.as_str())), Vec::new()),
        };
        let mut st = StageState::new(base, key, self.df.directives.escape);
        st.trail = trail;
        let triggers = std::mem::take(&mut st.config.on_build);
        if !triggers.is_empty() {
            let n = triggers.len();
            say(&self.out, format!("# Executing {n} build trigger{}\n", if n == 1 { "" } else { "s" }));
            for t in triggers {
                let parsed = berth_dockerfile::parse(&format!("FROM scratch\n{t}\n"))
                    .map_err(|e| BuildError::Invalid(format!("failed to process ONBUILD trigger {t:?}: {e}")))?;
                let Some(line) = parsed.stages.first().and_then(|s| s.instructions.first()).cloned() else { continue };
                self.exec(&mut st, &line, s).await?;
            }
        }
        for line in &stage.instructions {
            self.step_line(&line.instruction.original);
            self.exec(&mut st, line, s).await?;
        }
        if s == self.plan.target && !self.opts.labels.is_empty() {
            let text: Vec<String> = self.opts.labels.iter().map(|(k, v)| format!("{k:?}={v:?}")).collect();
            let ins = Instruction::parse(&format!("LABEL {}", text.join(" ")))?;
            self.step_line(&ins.original);
            self.exec(
                &mut st,
                &Line { line_no: 0, instruction: ins, heredocs: Vec::new(), empty_continuation: false },
                s,
            )
            .await?;
        }
        self.results.insert(s, st.image.clone());
        self.ends.insert(s, (st.key.clone(), st.trail.clone()));
        Ok(())
    }

    /// A `FROM` image: the daemon's, pulled first if it is missing (or always, with `--pull`).
    pub(crate) async fn base_image(&self, name: &str) -> Result<Image> {
        let local = self.b.images.resolve(name);
        match local {
            Ok(img) if !self.opts.pull => return Ok(img),
            Err(berth_image::ImageError::NotFound(_)) | Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let reference = berth_image::Reference::parse(name)
            .map_err(|e| BuildError::Invalid(format!("invalid reference format in FROM {name}: {e}")))?
            .with_default_tag();
        self.b.pull_base(&reference, self.opts.registry_config.as_deref(), &self.out).await?;
        Ok(self.b.images.resolve(name)?)
    }

    async fn exec(&mut self, st: &mut StageState, line: &Line, stage: usize) -> Result<()> {
        let ins = &line.instruction;
        match ins.keyword.as_str() {
            "RUN" => self.run_step(st, line, stage).await,
            "COPY" | "ADD" => self.copy_step(st, line, stage).await,
            "WORKDIR" => {
                let dir = st.workdir(&st.expand(ins.shell_text().trim())?);
                st.config.working_dir = dir.clone();
                let key = self.key(StepKey::new(&st.key).field("instruction", &format!("WORKDIR {dir}")));
                let created_by = format!("/bin/sh -c #(nop) WORKDIR {dir}");
                self.cached(st, key, created_by, |b, st| crate::copy::workdir_layer(b, st, &dir)).await
            }
            "ARG" => {
                let (text, names) = apply_arg(st, ins, &self.opts.build_args, &self.plan.meta_args)?;
                self.consumed.extend(names);
                self.config_step(st, text).await
            }
            _ => {
                let text = apply_config(st, ins)?;
                self.config_step(st, text).await
            }
        }
    }

    async fn config_step(&mut self, st: &mut StageState, text: String) -> Result<()> {
        let key = self.key(StepKey::new(&st.key).field("instruction", &text));
        let created_by = format!("/bin/sh -c #(nop)  {text}");
        self.cached(st, key, created_by, |_, _| Ok(Work::Config)).await
    }

    /// Looks `key` up; on a miss runs `work` (blocking) and commits what it made.
    pub async fn cached(
        &mut self,
        st: &mut StageState,
        key: String,
        created_by: String,
        work: impl FnOnce(&Builder, &StageState) -> Result<Work>,
    ) -> Result<()> {
        if let Some(img) = self.lookup(st, &key, &created_by).await? {
            st.advance(img, key);
            return Ok(());
        }
        let layer = match work(&self.b, st)? {
            Work::Config => NewLayer::Empty,
            Work::Layer(staging) => NewLayer::Staged { staging, content_ids: Default::default() },
        };
        let img = self.commit(st, layer, created_by, String::new()).await?;
        self.finish(st, key, img)
    }

    /// Finishes a step's key, showing it with `--debug-cache-key`.
    pub fn key(&self, k: StepKey) -> String {
        let explained = self.opts.debug_cache_key.then(|| k.explain());
        let key = k.finish();
        if let Some(e) = explained {
            say(&self.out, format!(" ---> cache key {key}\n{e}"));
        }
        key
    }

    /// A cache hit for the step `key` (whose history row reads `created_by`), announced
    /// as Docker does. With `--cache-from`, only the sources, their ancestors and images
    /// their histories continue count, and a source's history can supply a hit.
    ///
    /// A hit taken from a cache source (a `--cache-from` image's history, an imported
    /// inline cache) is trusted by this build only, which named the source: it never goes
    /// into the daemon's index, so a later build that did not name it cannot be handed
    /// that source's layers (see [`crate::cache::index_key`] for the steps built on top).
    pub async fn lookup(&mut self, st: &StageState, key: &str, created_by: &str) -> Result<Option<Image>> {
        if self.opts.no_cache {
            return Ok(None);
        }
        let hit = match self.source_ending_here(st, created_by) {
            Some(source) => Some(source),
            None => self.b.cache.lookup(&self.b.images, &index_key(key, st))?,
        };
        let hit = hit.filter(|img| {
            self.cache_sources.as_ref().is_none_or(|ok| {
                ok.contains(&img.id)
                    || self.history_sources.iter().any(|s| crate::cache_from::is_prefix(img, s))
                    || self.inline_sources.iter().any(|(s, _)| crate::cache_from::is_prefix(img, s))
            })
        });
        let hit = match hit {
            None if !self.inline_sources.is_empty() => match self.inline_hit(st, key, created_by).await? {
                None if !self.history_sources.is_empty() => self.history_hit(st, created_by).await?,
                r => r,
            },
            None if !self.history_sources.is_empty() => self.history_hit(st, created_by).await?,
            hit => hit,
        };
        if let Some(img) = &hit {
            say(&self.out, format!(" ---> Using cache\n ---> {}\n", short_id(&img.id)));
        }
        Ok(hit)
    }

    /// Records a built step and moves the stage to it.
    pub fn finish(&self, st: &mut StageState, key: String, img: Image) -> Result<()> {
        self.b.cache.record(&index_key(&key, st), &img.id)?;
        say(&self.out, format!(" ---> {}\n", short_id(&img.id)));
        st.advance(img, key);
        Ok(())
    }

    /// Commits the state's config on top of its image, with `layer` as the new layer.
    pub async fn commit(
        &self,
        st: &StageState,
        layer: NewLayer,
        created_by: String,
        container: String,
    ) -> Result<Image> {
        let images = self.b.images.clone();
        let base = st.image.clone();
        let mut config = st.config.clone();
        config.image = String::new();
        let opts = CommitOptions {
            author: st.author.clone(),
            created_by,
            container_id: container,
            defer_sync: true,
            ..Default::default()
        };
        tokio::task::spawn_blocking(move || images.commit_layer(base.as_ref(), layer, &config, &opts))
            .await
            .map_err(|e| BuildError::Internal(format!("commit task failed: {e}")))?
            .map_err(BuildError::from)
    }
}

/// The index entry for step `key` on the state's current image (see [`crate::cache::index_key`]).
fn index_key(key: &str, st: &StageState) -> String {
    crate::cache::index_key(key, st.image.as_ref().map(|i| i.id.as_str()))
}
