//! A container's mounts: host directories, named and anonymous volumes, and those taken
//! from other containers, resolved at create time into the record's `MountPoint`s.
//!
//! Precedence follows Docker: `--volumes-from` first, then `-v` binds, then `--mount`, each
//! overriding an earlier one at the same destination; the image's and `Config.Volumes`'s
//! paths become anonymous volumes only where nothing else is mounted (tmpfs included).
//! A new or empty volume is filled with what the image has at its destination unless
//! `nocopy` is asked for.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd};

use berth_api::models::{HostConfig, MountPoint, VolumeCreateRequest};
use rustix::fs::OFlags;

use crate::create::{clean, not_found_is_invalid, parse_bind};
use crate::{ContainerError, ContainerService, Result};

/// What create resolved: the mount points, the volumes it made (anonymous ones are the
/// container's to remove), and every volume it took a reference on.
#[derive(Default)]
pub(crate) struct Resolved {
    pub mounts: Vec<MountPoint>,
    pub anonymous: Vec<String>,
    pub created: Vec<String>,
    pub used: Vec<String>,
    /// Destinations of volumes to fill from the image.
    pub copy_up: Vec<String>,
}

fn invalid(m: impl Into<String>) -> ContainerError {
    ContainerError::Invalid(m.into())
}

impl ContainerService {
    /// Resolves every mount of a new container and takes references on its volumes. On
    /// error, nothing is left behind.
    pub(crate) fn resolve_mounts(&self, id: &str, host: &HostConfig, config_volumes: &[String]) -> Result<Resolved> {
        let mut r = Resolved::default();
        match self.resolve_into(id, host, config_volumes, &mut r) {
            Ok(()) => Ok(r),
            Err(e) => {
                self.release_mounts(id, &r.used, &r.created);
                Err(e)
            }
        }
    }

    /// Drops the references `resolve_mounts` took and removes the volumes it made.
    pub(crate) fn release_mounts(&self, id: &str, used: &[String], created: &[String]) {
        for v in used {
            self.volumes.release(v, id);
        }
        for v in created {
            let _ = self.volumes.remove(v, false);
        }
    }

    fn resolve_into(&self, id: &str, host: &HostConfig, config_volumes: &[String], r: &mut Resolved) -> Result<()> {
        let mut by_dest: BTreeMap<String, (MountPoint, bool)> = BTreeMap::new();
        // `--mount type=volume,volume-subpath=`: the directory of the volume to mount, by
        // destination.
        let mut subpaths: BTreeMap<String, String> = BTreeMap::new();
        for spec in host.volumes_from.iter().flatten() {
            let (name, mode) = match spec.split_once(':') {
                Some((n, m)) if m == "ro" || m == "rw" => (n, Some(m)),
                Some((_, m)) => return Err(invalid(format!("invalid mode: {m}"))),
                None => (spec.as_str(), None),
            };
            // dockerd answers 400 here: a 404 from create reads as a missing image.
            let other = self.get(name).map_err(not_found_is_invalid)?.record();
            for m in &other.mounts {
                let mut m = m.clone();
                if let Some(mode) = mode {
                    m.rw = mode == "rw";
                    m.mode = mode.into();
                }
                by_dest.insert(m.destination.clone(), (m, false));
            }
        }
        let mut explicit = std::collections::BTreeSet::new();
        for spec in host.binds.iter().flatten() {
            let b = parse_bind(spec)?;
            if !explicit.insert(b.destination.clone()) {
                return Err(invalid(format!("Duplicate mount point: {}", b.destination)));
            }
            let mode = spec.splitn(3, ':').nth(2).filter(|_| spec.matches(':').count() == 2).unwrap_or("").to_string();
            let mp = if b.is_volume {
                MountPoint {
                    kind: "volume".into(),
                    name: b.source.clone(),
                    destination: b.destination.clone(),
                    driver: String::new(),
                    mode: if b.source.is_empty() { String::new() } else { mode },
                    rw: !b.read_only,
                    ..Default::default()
                }
            } else {
                let src = clean(&b.source);
                if !std::path::Path::new(&src).exists() {
                    // `-v` creates a missing host directory (`--mount` refuses, see validation).
                    std::fs::create_dir_all(&src)
                        .map_err(|e| invalid(format!("error while creating mount source path '{src}': {e}")))?;
                }
                MountPoint {
                    kind: "bind".into(),
                    source: src,
                    destination: b.destination.clone(),
                    mode,
                    rw: !b.read_only,
                    propagation: if b.propagation.is_empty() { "rprivate".into() } else { b.propagation.clone() },
                    ..Default::default()
                }
            };
            by_dest.insert(b.destination.clone(), (mp, b.no_copy));
        }
        for m in host.mounts.iter().flatten() {
            let dest = clean(&m.target);
            if !explicit.insert(dest.clone()) {
                return Err(invalid(format!("Duplicate mount point: {dest}")));
            }
            match m.kind.as_str() {
                "bind" => {
                    let mp = MountPoint {
                        kind: "bind".into(),
                        source: clean(&m.source),
                        destination: dest.clone(),
                        rw: !m.read_only,
                        propagation: m
                            .bind_options
                            .as_ref()
                            .map(|b| b.propagation.clone())
                            .filter(|p| !p.is_empty())
                            .unwrap_or_else(|| "rprivate".into()),
                        ..Default::default()
                    };
                    by_dest.insert(dest, (mp, false));
                }
                "volume" => {
                    let opts = m.volume_options.clone().unwrap_or_default();
                    if !m.source.is_empty() && !berth_volume::valid_name(&m.source) {
                        return Err(invalid(format!(
                            "invalid mount config for type \"volume\": invalid volume name: {:?}",
                            m.source
                        )));
                    }
                    if !m.source.is_empty() && !self.volumes.exists(&m.source) {
                        let driver = opts.driver_config.clone().unwrap_or_default();
                        let v = self
                            .volumes
                            .create(VolumeCreateRequest {
                                name: m.source.clone(),
                                driver: driver.name,
                                driver_opts: driver.options,
                                labels: opts.labels.clone(),
                            })
                            .map_err(|e| create_err(&m.source, e))?;
                        r.created.push(v.name);
                    }
                    // The mount's own driver, if it names one, for an anonymous volume too;
                    // else `--volume-driver` below.
                    let driver = opts.driver_config.as_ref().map(|d| d.name.clone()).unwrap_or_default();
                    let mp = MountPoint {
                        kind: "volume".into(),
                        name: m.source.clone(),
                        destination: dest.clone(),
                        driver,
                        rw: !m.read_only,
                        ..Default::default()
                    };
                    if opts.subpath.is_empty() {
                        subpaths.remove(&dest);
                    } else {
                        subpaths.insert(dest.clone(), opts.subpath.clone());
                    }
                    by_dest.insert(dest, (mp, opts.no_copy));
                }
                _ => {}
            }
        }
        let tmpfs: Vec<String> = host
            .tmpfs
            .iter()
            .flatten()
            .map(|(d, _)| clean(d))
            .chain(host.mounts.iter().flatten().filter(|m| m.kind == "tmpfs").map(|m| clean(&m.target)))
            .collect();
        for v in config_volumes {
            let dest = clean(v);
            if by_dest.contains_key(&dest) || tmpfs.contains(&dest) {
                continue;
            }
            let mp = MountPoint {
                kind: "volume".into(),
                destination: dest.clone(),
                driver: String::new(),
                rw: true,
                ..Default::default()
            };
            by_dest.insert(dest, (mp, false));
        }
        for (dest, (mut mp, no_copy)) in by_dest {
            if mp.kind == "volume" {
                // `--volume-driver` names the driver of every volume this create makes (a
                // driver berth lacks is refused, as dockerd refuses a missing plugin).
                let driver = if mp.driver.is_empty() { host.volume_driver.clone() } else { mp.driver.clone() };
                mp.driver = "local".into();
                if mp.name.is_empty() {
                    let v = self.volumes.create_anonymous(id, &driver).map_err(|e| create_err("", e))?;
                    self.volume_event(&v.name, "create", &[]);
                    r.created.push(v.name.clone());
                    r.anonymous.push(v.name.clone());
                    mp.name = v.name;
                } else if !self.volumes.exists(&mp.name) {
                    let v = self
                        .volumes
                        .create(VolumeCreateRequest { name: mp.name.clone(), driver, ..Default::default() })
                        .map_err(|e| create_err(&mp.name, e))?;
                    self.volume_event(&v.name, "create", &[]);
                    r.created.push(v.name);
                }
                self.volumes.acquire(&mp.name, id).map_err(vol_err)?;
                r.used.push(mp.name.clone());
                mp.source = self.volumes.mountpoint(&mp.name).display().to_string();
                if let Some(sub) = subpaths.get(&dest) {
                    mp.source = volume_subpath(&self.volumes.mountpoint(&mp.name), sub, &mp.name)?;
                } else if !no_copy
                    && berth_volume::dir_is_empty(&self.volumes.mountpoint(&mp.name))
                    && !self.volumes.get(&mp.name).map(|v| v.options.contains_key("device")).unwrap_or(false)
                {
                    r.copy_up.push(dest.clone());
                }
            }
            r.mounts.push(mp);
        }
        Ok(())
    }

    /// Makes the mount points in the container's filesystem (so `cp` and `diff` see them
    /// before the first start) and fills empty volumes with the image's content there.
    pub(crate) async fn populate_mounts(&self, rec: &crate::record::Record, copy_up: Vec<String>) -> Result<()> {
        if rec.mounts.is_empty() {
            return Ok(());
        }
        let mounts = rec.mounts.clone();
        // The image's own content is what is wanted here, not the volumes over it.
        let mut bare = rec.clone();
        bare.mounts.clear();
        self.with_root(&bare, true, move |root| {
            for m in &mounts {
                let file = std::fs::metadata(&m.source).map(|md| !md.is_dir()).unwrap_or(false);
                let at = berth_runtime::paths::ensure_mountpoint(root, &m.destination, file)
                    .map_err(|e| invalid(format!("creating mount point {}: {e}", m.destination)))?;
                if copy_up.contains(&m.destination) {
                    let from = berth_runtime::paths::fd_path(&at);
                    berth_volume::copy_tree(std::path::Path::new(&from), std::path::Path::new(&m.source)).map_err(
                        |e| {
                            ContainerError::io(
                                format!("copying the image's {} into volume {}", m.destination, m.name),
                                e,
                            )
                        },
                    )?;
                }
            }
            Ok(())
        })
        .await
    }
}

/// Binds a stopped container's mounts over its filesystem at `root` (inside the private
/// mount namespace `with_root` made), so `cp` reads and writes volumes as Docker's does.
pub(crate) fn bind_mounts(root: BorrowedFd<'_>, mounts: &[MountPoint]) -> Result<()> {
    let mut sorted: Vec<&MountPoint> = mounts.iter().collect();
    sorted.sort_by_key(|m| m.destination.matches('/').count());
    for m in sorted {
        let Ok(at) = berth_runtime::paths::open_in_root(root.as_fd(), &m.destination, OFlags::PATH) else { continue };
        let target = berth_runtime::paths::fd_path(&at);
        let mut flags = rustix::mount::MountFlags::BIND | rustix::mount::MountFlags::REC;
        rustix::mount::mount(m.source.as_str(), target.as_str(), "", flags, None)
            .map_err(|e| ContainerError::io(format!("mounting {}", m.destination), e.into()))?;
        if !m.rw {
            flags = rustix::mount::MountFlags::BIND | rustix::mount::MountFlags::RDONLY;
            let at = berth_runtime::paths::open_in_root(root.as_fd(), &m.destination, OFlags::PATH)
                .map_err(|e| ContainerError::io("reopening mount", e.into()))?;
            rustix::mount::mount_remount(berth_runtime::paths::fd_path(&at).as_str(), flags, "")
                .map_err(|e| ContainerError::io(format!("remounting {} read-only", m.destination), e.into()))?;
        }
    }
    Ok(())
}

/// The directory `sub` of the volume `name` (mounted at `mountpoint`): a relative path
/// that exists and, links resolved, stays inside the volume (as Docker requires).
fn volume_subpath(mountpoint: &std::path::Path, sub: &str, name: &str) -> Result<String> {
    use std::path::Component;
    let p = std::path::Path::new(sub);
    if p.is_absolute() || p.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(invalid(format!(
            "invalid mount config for type \"volume\": subpath must be a relative path within the volume: {sub:?}"
        )));
    }
    let base = std::fs::canonicalize(mountpoint)
        .map_err(|e| invalid(format!("error while mounting volume {name:?}: {}: {e}", mountpoint.display())))?;
    let full = std::fs::canonicalize(base.join(p))
        .map_err(|e| invalid(format!("error while mounting volume {name:?}: cannot access subpath {sub:?}: {e}")))?;
    if !full.starts_with(&base) {
        return Err(invalid(format!("error while mounting volume {name:?}: subpath {sub:?} leads out of the volume")));
    }
    Ok(full.display().to_string())
}

/// A volume a create could not make: a missing driver is the request's mistake (400, so
/// the docker CLI does not take it for a missing image), named as dockerd names it.
fn create_err(name: &str, e: berth_volume::VolumeError) -> ContainerError {
    use berth_api::{ErrorKind, HasKind};
    match e.kind() {
        ErrorKind::NotFound if name.is_empty() => ContainerError::Invalid(e.to_string()),
        ErrorKind::NotFound => ContainerError::Invalid(format!("create {name}: {e}")),
        _ => vol_err(e),
    }
}

pub(crate) fn vol_err(e: berth_volume::VolumeError) -> ContainerError {
    use berth_api::{ErrorKind, HasKind};
    match e.kind() {
        ErrorKind::NotFound => ContainerError::NotFoundPath(e.to_string()),
        ErrorKind::InvalidArgument => ContainerError::Invalid(e.to_string()),
        ErrorKind::Conflict => ContainerError::Conflict(e.to_string()),
        _ => ContainerError::Internal(e.to_string()),
    }
}
