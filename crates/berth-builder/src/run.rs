//! RUN: a container made from the step's image runs the command; its changes are the layer.

use std::collections::BTreeMap;
use std::path::Path;

use berth_api::ids::short_id;
use berth_api::models::{ContainerConfig, ContainerCreateRequest, HostConfig, LogConfig};
use berth_container::attach::{AttachOptions, Output};
use berth_container::{CreateOptions, WaitCondition};
use berth_dockerfile::heredoc::{RunScript, run_script};
use berth_dockerfile::{Args, Line};
use berth_image::commit::NewLayer;

use berth_dockerfile::run_flags::RunNetwork;

use crate::cache::{StepKey, args_field};
use crate::executor::Build;
use crate::run_mounts::{StepMounts, remove_stubs, step_mounts};
use crate::state::StageState;
use crate::{BuildError, Event, Result, say};

/// What RUN executes, decided before the cache is consulted.
struct Command {
    argv: Vec<String>,
    /// Heredoc scripts to mount (host file, path in the container).
    scripts: Vec<(String, String)>,
}

fn command(st: &StageState, line: &Line) -> Result<Command> {
    let ins = &line.instruction;
    let mut scripts = Vec::new();
    let argv = match &ins.args {
        Args::Exec(v) => v.clone(),
        Args::Shell(text) => {
            let mut argv = st.shell();
            match run_script(text, &line.heredocs) {
                None => argv.push(text.clone()),
                Some(RunScript::Inline(body)) | Some(RunScript::Shell(body)) => argv.push(body),
                Some(RunScript::File { name, content }) => {
                    let path = format!("/dev/pipes/{name}");
                    scripts.push((content, path.clone()));
                    argv = vec![path];
                }
            }
            argv
        }
    };
    if argv.is_empty() {
        return Err(BuildError::Invalid("RUN requires at least one argument".into()));
    }
    Ok(Command { argv, scripts })
}

impl Build {
    pub(crate) async fn run_step(&mut self, st: &mut StageState, line: &Line, stage: usize) -> Result<()> {
        let cmd = command(st, line)?;
        let mounts = step_mounts(st, &line.instruction)?;
        let args = st.run_args();
        let mut key = StepKey::new(&st.key)
            .field("run", &serde_json::to_string(&cmd.argv).unwrap_or_default())
            .field("args", &args_field(&args));
        for (content, path) in &cmd.scripts {
            key = key.field("script", path).field("content", content);
        }
        for (name, value) in self.mount_key(&mounts, stage).await? {
            key = key.field(&name, &value);
        }
        let key = self.key(key);
        let shown = cmd.argv.join(" ");
        let created_by = if args.is_empty() {
            shown.clone()
        } else {
            let pairs: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("|{} {} {shown}", args.len(), pairs.join(" "))
        };
        if let Some(img) = self.lookup(st, &key, &created_by).await? {
            st.advance(img, key);
            return Ok(());
        }
        let img = self.run_container(st, &cmd, &args, created_by, &mounts, stage).await?;
        self.finish(st, key, img)
    }

    async fn run_container(
        &self,
        st: &mut StageState,
        cmd: &Command,
        args: &BTreeMap<String, String>,
        created_by: String,
        mounts: &StepMounts,
        stage: usize,
    ) -> Result<berth_image::Image> {
        let network_mode = match mounts.network {
            RunNetwork::Default => self.opts.network_mode.clone(),
            RunNetwork::None => "none".into(),
            // The host's network is the client's to give, never the Dockerfile's to take
            // (BuildKit's `network.host` entitlement): a Dockerfile run by CI would reach
            // the host's loopback services. The client gives it with `--network host`.
            RunNetwork::Host if self.opts.network_mode == "host" => "host".into(),
            RunNetwork::Host => {
                return Err(BuildError::Invalid(
                    "RUN --network=host: granting entitlement network.host is not allowed: the build's client must allow it (build with --network host)".into(),
                ));
            }
        };
        if st.image.is_none() {
            // FROM scratch: the container needs an image, even an empty one.
            let empty = self.commit(st, NewLayer::Empty, String::new(), String::new()).await?;
            st.image = Some(empty);
        }
        let base = st.image.clone().ok_or_else(|| BuildError::Internal("no base image".into()))?;
        let scratch = self.b.config.scratch.join(format!("run-{}", &berth_api::ids::random_id()[..16]));
        let mut binds = Vec::new();
        for (i, (content, path)) in cmd.scripts.iter().enumerate() {
            let host = scratch.join(format!("script{i}"));
            write_script(&host, content)?;
            binds.push(format!("{}:{path}:ro", host.display()));
        }
        let mut active = match self.mount_prepare(mounts, stage, &scratch).await {
            Ok(a) => a,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(e);
            }
        };
        let mut env: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        // Proxy build args reach RUN without a declaration (and stay out of the key).
        for (k, v) in &self.opts.build_args {
            if let Some(v) =
                v.as_ref().filter(|_| berth_dockerfile::build_args::is_predefined(k) && !st.args.contains_key(k))
            {
                env.push(format!("{k}={v}"));
            }
        }
        env.extend(st.config.env.iter().cloned());
        env.append(&mut active.env);
        let mut argv = cmd.argv.clone();
        let init = !active.secret_env.is_empty();
        if init {
            // The init is bind-mounted at /sbin/docker-init; a stub the image lacked goes.
            active.targets.push("/sbin/docker-init".into());
            let mut pre = Vec::new();
            for (name, file) in &active.secret_env {
                pre.extend(["--secret-env".to_string(), format!("{name}={file}")]);
            }
            pre.push("--".into());
            argv.splice(0..0, pre);
        }
        let request = ContainerCreateRequest {
            config: ContainerConfig {
                image: base.id.clone(),
                cmd: Some(argv),
                entrypoint: Some(vec![String::new()]),
                env,
                working_dir: st.config.working_dir.clone(),
                user: st.config.user.clone(),
                attach_stdout: true,
                attach_stderr: true,
                ..Default::default()
            },
            host_config: HostConfig {
                network_mode,
                init: init.then_some(true),
                extra_hosts: (!self.opts.extra_hosts.is_empty()).then(|| self.opts.extra_hosts.clone()),
                binds: (!binds.is_empty()).then_some(binds),
                mounts: (!active.mounts.is_empty()).then(|| std::mem::take(&mut active.mounts)),
                tmpfs: (!active.tmpfs.is_empty()).then(|| std::mem::take(&mut active.tmpfs)),
                log_config: LogConfig { kind: "none".into(), config: Default::default() },
                ..Default::default()
            },
            networking_config: Default::default(),
        };
        let svc = self.b.containers.clone();
        let created = svc.create(CreateOptions { name: None, request, ..Default::default() }).await;
        let (id, _) = match created {
            Ok(c) => c,
            Err(e) => {
                active.release();
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(e.into());
            }
        };
        self.b.remember_build_container(&id);
        say(&self.out, format!(" ---> Running in {}\n", short_id(&id)));
        let result = self.drive(&id, st, created_by, &cmd.argv, &active.targets).await;
        active.release();
        // A container that had a secret does not outlive its step, whatever `--rm` says.
        if self.opts.keep_containers && !active.sensitive {
            // The heredoc scripts stay: the kept container's binds name them.
            self.b.forget_build_container(&id);
            return result;
        }
        let removed = svc.remove(&id, true, true).await;
        self.b.forget_build_container(&id);
        let _ = std::fs::remove_dir_all(&scratch);
        let img = result?;
        removed?;
        say(&self.out, format!(" ---> Removed intermediate container {}\n", short_id(&id)));
        Ok(img)
    }

    /// Starts the container, streams its output, and commits it if it succeeded.
    async fn drive(
        &self,
        id: &str,
        st: &StageState,
        created_by: String,
        argv: &[String],
        mount_targets: &[String],
    ) -> Result<berth_image::Image> {
        let svc = &self.b.containers;
        let mut session = svc.attach(id, AttachOptions { stdin: false, stdout: true, stderr: true }).await?;
        svc.start(id).await?;
        let max = if self.opts.step_log_max == 0 { crate::STEP_LOG_MAX } else { self.opts.step_log_max };
        let mut sent = 0usize;
        while let Some(o) = session.output.recv().await {
            let (stderr, b) = match o {
                Output::Stdout(b) => (false, b),
                Output::Stderr(b) => (true, b),
                Output::Exit(_) => break,
            };
            // Past the limit the output is read and dropped: the process runs on.
            if sent > max {
                continue;
            }
            let kept = b.len().min(max - sent);
            if kept > 0 {
                let _ = self.out.send(Event::Output { stderr, data: b[..kept].to_vec() });
            }
            sent += kept;
            if kept < b.len() {
                sent = max + 1;
                let note = format!("\n[output clipped, log limit {}MiB reached]\n", max >> 20);
                let _ = self.out.send(Event::Output { stderr: false, data: note.into_bytes() });
            }
        }
        let code = svc.wait(id, WaitCondition::NotRunning).await?;
        if code != 0 {
            return Err(BuildError::RunFailed { command: argv.join(" "), code });
        }
        let upper = self.b.images.snapshots().upper_dir(id)?;
        let vols: Vec<String> = st.config.volumes.iter().flat_map(|v| v.keys().cloned()).collect();
        let lower = crate::rootfs::Tree::of_image(&self.b.images, st.image.as_ref())?;
        discard_volume_changes(&upper, &vols, &lower);
        remove_stubs(&upper, mount_targets, &lower);
        // A command that changed nothing adds no layer (just a history row).
        let changed = std::fs::read_dir(&upper).map(|mut d| d.next().is_some()).unwrap_or(true);
        self.commit(st, if changed { NewLayer::Copy(upper) } else { NewLayer::Empty }, created_by, id.to_string()).await
    }
}

fn write_script(host: &Path, content: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(p) = host.parent() {
        std::fs::create_dir_all(p).map_err(|e| BuildError::io("creating the script directory", e))?;
    }
    std::fs::write(host, content).map_err(|e| BuildError::io("writing the heredoc script", e))?;
    std::fs::set_permissions(host, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| BuildError::io("chmod of the heredoc script", e))
}

/// What RUN changed under a VOLUME is discarded, as Docker does (there the volume, not the
/// image, received it): the volume's directory in the layer is dropped, so the image
/// keeps what it had there; a directory the image lacked stays, empty.
fn discard_volume_changes(upper: &Path, volumes: &[String], lower: &crate::rootfs::Tree) {
    for v in volumes {
        let rel = v.trim_matches('/');
        if rel.is_empty() {
            continue;
        }
        let Some(p) = crate::rootfs::in_upper(upper, rel) else { continue };
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        if m.is_dir() {
            let _ = std::fs::remove_dir_all(&p);
            if lower.lookup(rel).is_none() {
                let _ = std::fs::create_dir(&p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::discard_volume_changes;
    use crate::rootfs::Tree;

    /// `VOLUME /a/b`, then a step that makes `/a` a symlink to a host directory: the
    /// daemon must not empty the host's `b` (it walks the host's tree).
    #[test]
    fn volume_changes_are_never_discarded_through_a_symlink() {
        let t = tempfile::tempdir().unwrap();
        let (upper, lower, victim) = (t.path().join("upper"), t.path().join("lower"), t.path().join("victim"));
        std::fs::create_dir_all(&lower).unwrap();
        std::fs::create_dir_all(victim.join("b/keep")).unwrap();
        std::fs::write(victim.join("b/keep/data.txt"), "host data").unwrap();
        std::fs::create_dir_all(&upper).unwrap();
        std::os::unix::fs::symlink(&victim, upper.join("a")).unwrap();
        discard_volume_changes(&upper, &["/a/b".into()], &Tree::new(vec![lower.clone()]));
        assert_eq!(std::fs::read_to_string(victim.join("b/keep/data.txt")).unwrap(), "host data");
        // Control: under a real directory the step's changes to the volume go.
        std::fs::remove_file(upper.join("a")).unwrap();
        std::fs::create_dir_all(upper.join("a/b/made")).unwrap();
        discard_volume_changes(&upper, &["/a/b".into()], &Tree::new(vec![lower]));
        assert!(upper.join("a/b").is_dir() && !upper.join("a/b/made").exists());
    }
}
