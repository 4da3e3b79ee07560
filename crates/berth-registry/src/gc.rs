//! Garbage collection: delete blob data that no manifest references.
//!
//! # What is kept
//!
//! **Mark**: every manifest revision of every repository is live (with
//! [`GcOptions::delete_untagged`], only those reachable from a tag, through index/list
//! children, plus referrers of live manifests). A live manifest marks its own bytes, its
//! config, its layers and its child manifests. **Sweep**: every blob under `blobs/` that is
//! not marked is deleted, then repository layer links whose blob is gone are removed.
//! Stale upload sessions (idle longer than [`GcOptions::upload_max_age`]) and temp files are
//! removed too.
//!
//! # Safe while serving
//!
//! A push uploads layers first and the manifest last, so for a while its blobs are
//! referenced by nothing. GC therefore never deletes a blob, manifest revision or temp file
//! younger than [`GcOptions::grace_period`] (mtime), and the server refreshes a blob's mtime
//! whenever a request makes it reachable again (re-upload, mount, a manifest naming it).
//! A push that takes longer than the grace period between uploading a layer and putting its
//! manifest can lose that layer; the client then gets `MANIFEST_BLOB_UNKNOWN` and must
//! re-upload, nothing is corrupted. One narrow race remains in theory: a manifest `PUT` that
//! checks an old unreferenced blob in the instant between GC's age check and its unlink.
//! With the default hour of grace that needs a blob idle for an hour to be re-referenced in
//! that instant.
//!
//! Errors on single entries do not stop the run; they are collected in
//! [`GcReport::errors`].

use crate::error::Result;
use crate::manifest;
use crate::names::{Algorithm, Digest};
use crate::storage::{Storage, remove_all};
use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Report what would be deleted without deleting anything.
    pub dry_run: bool,
    /// Also delete manifest revisions that no tag reaches (directly, as a child of a tagged
    /// index, or as a referrer of a kept manifest), and so the blobs only they referenced.
    /// Off by default: pulls by digest of untagged images keep working.
    pub delete_untagged: bool,
    /// Nothing younger than this is deleted. Default one hour.
    pub grace_period: Duration,
    /// Upload sessions idle longer than this are removed. Default seven days.
    pub upload_max_age: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            delete_untagged: false,
            grace_period: Duration::from_secs(3600),
            upload_max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What a run deleted (or, in a dry run, would have deleted).
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    pub dry_run: bool,
    /// Blobs referenced by live manifests.
    pub blobs_marked: usize,
    pub blobs_deleted: Vec<Digest>,
    pub bytes_freed: u64,
    /// Unreferenced blobs kept because they are younger than the grace period.
    pub blobs_in_grace: Vec<Digest>,
    pub manifests_deleted: Vec<(String, Digest)>,
    pub layer_links_removed: Vec<(String, Digest)>,
    pub uploads_purged: Vec<(String, String)>,
    pub temp_files_removed: usize,
    pub errors: Vec<String>,
}

/// Collects garbage under `root` with default options (one hour of grace, untagged
/// manifests kept). Safe to run while a registry serves the same root.
pub fn garbage_collect(root: &Path, dry_run: bool) -> Result<GcReport> {
    garbage_collect_with(root, &GcOptions { dry_run, ..GcOptions::default() })
}

pub fn garbage_collect_with(root: &Path, opts: &GcOptions) -> Result<GcReport> {
    let s = Storage::open(root)?;
    let mut report = GcReport { dry_run: opts.dry_run, ..GcReport::default() };
    let now = SystemTime::now();
    let old = |p: &Path, age: Duration| {
        fs::metadata(p).and_then(|m| m.modified()).is_ok_and(|t| now.duration_since(t).is_ok_and(|d| d >= age))
    };

    let repos = s.catalog()?;
    let mut marked: HashSet<Digest> = HashSet::new();
    for name in &repos {
        let live = match live_revisions(&s, name, opts, &old, &mut report) {
            Ok(l) => l,
            Err(e) => {
                report.errors.push(format!("{name}: {e}"));
                // Cannot tell what is live here: keep everything it might reference.
                s.revisions(name).unwrap_or_default()
            }
        };
        for d in live {
            if let Ok(Some(bytes)) = s.read_blob(&d) {
                marked.extend(manifest::references(&bytes));
            }
            marked.insert(d);
        }
    }
    report.blobs_marked = marked.len();

    let mut gone: HashSet<Digest> = HashSet::new();
    for d in all_blobs(&s, &mut report) {
        if marked.contains(&d) {
            continue;
        }
        let path = s.blob_path(&d);
        if !old(&path, opts.grace_period) {
            report.blobs_in_grace.push(d);
            continue;
        }
        let size = fs::metadata(&path).map_or(0, |m| m.len());
        if !opts.dry_run
            && let Err(e) = remove_all(path.parent().expect("blob dir"))
        {
            report.errors.push(format!("delete {d}: {e}"));
            continue;
        }
        report.bytes_freed += size;
        gone.insert(d.clone());
        report.blobs_deleted.push(d);
    }

    for name in s.repo_dirs()? {
        sweep_repo(&s, &name, opts, &gone, &old, &mut report);
    }
    for t in crate::storage::list_dir(&s.tmp_dir())? {
        let p = s.tmp_dir().join(t);
        if old(&p, opts.grace_period) && (opts.dry_run || remove_all(&p).is_ok()) {
            report.temp_files_removed += 1;
        }
    }
    Ok(report)
}

/// The revisions of `name` that stay, deleting the others when asked to.
fn live_revisions(
    s: &Storage,
    name: &str,
    opts: &GcOptions,
    old: &impl Fn(&Path, Duration) -> bool,
    report: &mut GcReport,
) -> Result<Vec<Digest>> {
    let revisions = s.revisions(name)?;
    if !opts.delete_untagged {
        return Ok(revisions);
    }
    let mut keep: BTreeSet<Digest> = BTreeSet::new();
    let mut queue: Vec<Digest> = Vec::new();
    for t in s.tags(name)? {
        queue.extend(s.resolve_tag(name, &t)?);
    }
    // Children of kept indexes, then referrers of kept manifests, until nothing changes.
    loop {
        while let Some(d) = queue.pop() {
            if keep.insert(d.clone())
                && let Some(bytes) = s.read_blob(&d)?
            {
                queue.extend(manifest::references(&bytes).into_iter().filter(|c| s.has_manifest(name, c)));
            }
        }
        for d in &keep {
            queue.extend(s.referrers(name, d)?.into_iter().filter(|r| !keep.contains(r)));
        }
        if queue.is_empty() {
            break;
        }
    }
    let mut live = Vec::new();
    for d in revisions {
        let young = !old(&s.revision_dir(name, &d).join("link"), opts.grace_period);
        if keep.contains(&d) || young {
            live.push(d);
            continue;
        }
        let subject = s.read_blob(&d)?.and_then(|b| manifest::subject_of(&b));
        if !opts.dry_run {
            s.delete_manifest(name, &d, subject.as_ref())?;
        }
        report.manifests_deleted.push((name.to_string(), d));
    }
    Ok(live)
}

fn all_blobs(s: &Storage, report: &mut GcReport) -> Vec<Digest> {
    let mut out = Vec::new();
    for alg in [Algorithm::Sha256, Algorithm::Sha512] {
        let base = s.root().join("blobs").join(alg.as_str());
        let prefixes = crate::storage::list_dir(&base).unwrap_or_else(|e| {
            report.errors.push(e.to_string());
            Vec::new()
        });
        for p in prefixes {
            for hex in crate::storage::list_dir(&base.join(&p)).unwrap_or_default() {
                match Digest::parse(&format!("{}:{hex}", alg.as_str())) {
                    Ok(d) if base.join(&p).join(&hex).join("data").is_file() => out.push(d),
                    Ok(_) => {}
                    Err(_) => report.errors.push(format!("stray entry blobs/{}/{p}/{hex}", alg.as_str())),
                }
            }
        }
    }
    out
}

/// Dangling layer links and stale upload sessions of one repository.
fn sweep_repo(
    s: &Storage,
    name: &str,
    opts: &GcOptions,
    gone: &HashSet<Digest>,
    old: &impl Fn(&Path, Duration) -> bool,
    report: &mut GcReport,
) {
    for alg in [Algorithm::Sha256, Algorithm::Sha512] {
        let dir = s.repo_dir(name).join("_layers").join(alg.as_str());
        for hex in crate::storage::list_dir(&dir).unwrap_or_default() {
            let Ok(d) = Digest::parse(&format!("{}:{hex}", alg.as_str())) else {
                continue;
            };
            let dangling = gone.contains(&d) || s.blob_size(&d).ok().flatten().is_none();
            if dangling && (opts.dry_run || s.unlink_blob(name, &d).is_ok()) {
                report.layer_links_removed.push((name.to_string(), d));
            }
        }
    }
    let uploads = s.repo_dir(name).join("_uploads");
    for id in crate::storage::list_dir(&uploads).unwrap_or_default() {
        let data = uploads.join(&id).join("data");
        let idle =
            if data.exists() { old(&data, opts.upload_max_age) } else { old(&uploads.join(&id), opts.upload_max_age) };
        if idle && (opts.dry_run || remove_all(&uploads.join(&id)).is_ok()) {
            report.uploads_purged.push((name.to_string(), id));
        }
    }
}
