//! `docker save` and `docker load`: images with their tags in one tar.
//!
//! berth writes the layout Docker 25+ writes, which older Dockers also load: an OCI image
//! layout (`oci-layout`, `index.json`, `blobs/sha256/…`, uncompressed layers so each layer
//! blob's digest is its diff ID) plus the classic `manifest.json` and `repositories`.
//! Loading accepts that layout, the classic one (`<id>/layer.tar`, `<id>.json`, symlinked
//! duplicate layers), and OCI layouts with compressed layers.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use berth_archive::apply::{ApplyOptions, apply};
use berth_archive::compress::{Compression, decompressed};
use berth_archive::hash::HashingReader;
use berth_archive::header::{EntryType, Header};
use berth_archive::reader::TarReader;
use berth_archive::writer::TarWriter;
use berth_store::snapshot::Staging;

use crate::config::ImageConfig;
use crate::reference::{Reference, familiar};
use crate::{ImageError, ImageStore, Result};

const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MT_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MT_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

#[derive(Debug, Serialize, Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default, deserialize_with = "berth_api::models::null_default")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers", default, deserialize_with = "berth_api::models::null_default")]
    layers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct OciManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: i64,
    #[serde(rename = "mediaType", default, skip_serializing_if = "String::is_empty")]
    media_type: String,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Debug, Serialize, Deserialize)]
struct OciIndex {
    #[serde(rename = "schemaVersion")]
    schema_version: i64,
    #[serde(rename = "mediaType", default, skip_serializing_if = "String::is_empty")]
    media_type: String,
    manifests: Vec<Descriptor>,
}

fn hex(d: &str) -> &str {
    d.strip_prefix("sha256:").unwrap_or(d)
}

struct SaveWriter<W: Write> {
    tar: TarWriter<W>,
    written: std::collections::HashSet<String>,
}

impl<W: Write> SaveWriter<W> {
    fn file(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.file_at(path, data, 0)
    }

    /// A file with its modification time (seconds since the epoch).
    fn file_at(&mut self, path: &str, data: &[u8], mtime: i64) -> io::Result<()> {
        let mut h = Header::new(path, EntryType::Regular);
        h.size = data.len() as u64;
        h.mtime = mtime;
        self.tar.append(&h, &mut &data[..])
    }

    fn dir(&mut self, path: &str) -> io::Result<()> {
        self.tar.append(&Header::new(path, EntryType::Directory), &mut io::empty())
    }
}

/// The largest entry of an archive being loaded that is kept in memory (an image config or
/// manifest; larger ones are skipped, and an image that needs one is refused as missing it).
const METADATA_ENTRY_MAX: u64 = 16 << 20;
/// The most all such entries of one archive may hold together.
const METADATA_MAX: u64 = 64 << 20;
impl ImageStore {
    /// Writes the images `names` name, with their tags, as one archive to `out`.
    /// A bare repository name (`busybox`) saves every tag of that repository.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<()> {
        // image ID → tags to record, in the order asked.
        let mut order: Vec<String> = Vec::new();
        let mut tags: HashMap<String, Vec<Reference>> = HashMap::new();
        for n in names {
            let parsed = Reference::parse(n).ok();
            let mut add = |id: String, r: Option<Reference>| {
                if !order.contains(&id) {
                    order.push(id.clone());
                }
                let list = tags.entry(id).or_default();
                if let Some(r) = r
                    && !list.contains(&r)
                {
                    list.push(r);
                }
            };
            if let Some(repo) = parsed.as_ref().filter(|r| r.tag.is_none() && r.digest.is_none()) {
                let in_repo = self.tags_in_repository(repo);
                if !in_repo.is_empty() {
                    for (full, id) in in_repo {
                        add(id, Reference::parse(&full).ok());
                    }
                    continue;
                }
            }
            let image = self.resolve(n)?;
            let named = parsed
                .filter(|r| r.digest.is_none())
                .map(|r| r.with_default_tag())
                .filter(|r| self.refs_of(&image.id).contains(&r.full()));
            add(image.id, named);
        }
        if order.is_empty() {
            return Err(ImageError::Invalid("nothing to save: no image names given".into()));
        }

        let mut w = SaveWriter { tar: TarWriter::new(out), written: Default::default() };
        let io_err = |e: io::Error| ImageError::io("writing archive", e);
        w.dir("blobs/").map_err(io_err)?;
        w.dir("blobs/sha256/").map_err(io_err)?;
        let mut classic = Vec::new();
        let mut index = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for id in &order {
            let image = self.get(id).ok_or_else(|| ImageError::NotFound(id.clone()))?;
            let config = self.content.read(id)?;
            // As dockerd does, an image's config and layers carry its creation time (the
            // index and manifests the epoch).
            let created = image
                .config
                .created
                .as_deref()
                .and_then(berth_api::time::parse_rfc3339)
                .map_or(0, |t| (t / 1_000_000_000) as i64);
            if w.written.insert(id.clone()) {
                w.file_at(&format!("blobs/sha256/{}", hex(id)), &config, created).map_err(io_err)?;
            }
            let mut layers = Vec::new();
            for d in &image.config.rootfs.diff_ids {
                let info =
                    self.snapshots.layer(d)?.ok_or_else(|| ImageError::Invalid(format!("layer {d} is missing")))?;
                let path = format!("blobs/sha256/{}", hex(d));
                if w.written.insert(d.clone()) {
                    let mut h = Header::new(path.clone(), EntryType::Regular);
                    h.size = info.tar_size;
                    h.mtime = created;
                    w.tar.append_header(&h).map_err(io_err)?;
                    // Stream the reassembled layer straight into the archive.
                    let n = self.snapshots.write_layer_tar(d, w.tar.get_mut())?;
                    if n != info.tar_size {
                        return Err(ImageError::Invalid(format!(
                            "layer {d} reassembled to {n} bytes, expected {}",
                            info.tar_size
                        )));
                    }
                    w.tar
                        .get_mut()
                        .write_all(&vec![0u8; berth_archive::header::padding(n) as usize])
                        .map_err(io_err)?;
                }
                layers.push((
                    path,
                    Descriptor {
                        media_type: MT_OCI_LAYER.into(),
                        digest: d.clone(),
                        size: info.tar_size as i64,
                        annotations: None,
                    },
                ));
            }
            let manifest = OciManifest {
                schema_version: 2,
                media_type: MT_OCI_MANIFEST.into(),
                config: Descriptor {
                    media_type: MT_OCI_CONFIG.into(),
                    digest: id.clone(),
                    size: config.len() as i64,
                    annotations: None,
                },
                layers: layers.iter().map(|(_, d)| d.clone()).collect(),
            };
            let mbytes = serde_json::to_vec(&manifest).unwrap_or_default();
            let mdigest = berth_archive::hash::sha256_digest(&mbytes);
            if w.written.insert(mdigest.clone()) {
                w.file(&format!("blobs/sha256/{}", hex(&mdigest)), &mbytes).map_err(io_err)?;
            }
            let refs = tags.get(id).cloned().unwrap_or_default();
            if refs.is_empty() {
                index.push(Descriptor {
                    media_type: MT_OCI_MANIFEST.into(),
                    digest: mdigest.clone(),
                    size: mbytes.len() as i64,
                    annotations: None,
                });
            }
            for r in &refs {
                let mut ann = BTreeMap::new();
                ann.insert("io.containerd.image.name".to_string(), r.full());
                ann.insert("org.opencontainers.image.ref.name".to_string(), r.tag.clone().unwrap_or_default());
                index.push(Descriptor {
                    media_type: MT_OCI_MANIFEST.into(),
                    digest: mdigest.clone(),
                    size: mbytes.len() as i64,
                    annotations: Some(ann),
                });
                repositories
                    .entry(r.familiar_repository())
                    .or_default()
                    .insert(r.tag.clone().unwrap_or_default(), hex(id).to_string());
            }
            classic.push(ManifestEntry {
                config: format!("blobs/sha256/{}", hex(id)),
                repo_tags: refs.iter().map(|r| r.familiar()).collect(),
                layers: layers.into_iter().map(|(p, _)| p).collect(),
            });
        }
        let idx = OciIndex { schema_version: 2, media_type: MT_OCI_INDEX.into(), manifests: index };
        w.file("index.json", &serde_json::to_vec(&idx).unwrap_or_default()).map_err(io_err)?;
        w.file("manifest.json", &serde_json::to_vec(&classic).unwrap_or_default()).map_err(io_err)?;
        w.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err)?;
        if !repositories.is_empty() {
            w.file("repositories", &serde_json::to_vec(&repositories).unwrap_or_default()).map_err(io_err)?;
        }
        w.tar.finish().map_err(io_err)?;
        Ok(())
    }

    /// Reads an archive written by `save` (berth's or Docker's) and records its images and
    /// tags. Returns Docker's messages (`Loaded image: busybox:latest`). Nothing is stored
    /// unless the whole archive is valid.
    pub fn load(&self, input: impl Read) -> Result<Vec<String>> {
        let mut outer = TarReader::new(input, false);
        let mut small: HashMap<String, Vec<u8>> = HashMap::new();
        let mut layers: HashMap<String, StagedLayer> = HashMap::new();
        let mut links: HashMap<String, String> = HashMap::new();
        let mut saw_entry = false;
        // What is kept in memory until the archive has been read: manifests, configs, the
        // index (kilobytes in real archives), bounded in all.
        let mut kept: u64 = 0;
        while let Some(h) = outer.next_entry()? {
            saw_entry = true;
            let path = match berth_archive::paths::clean_entry_path(&h.path)? {
                Some(p) => p,
                None => continue,
            };
            match h.kind {
                EntryType::Symlink | EntryType::HardLink => {
                    let (dir, _) = berth_archive::paths::split_parent(&path);
                    let target = if h.kind == EntryType::Symlink && !h.link.starts_with('/') && !dir.is_empty() {
                        format!("{dir}/{}", h.link)
                    } else {
                        h.link.clone()
                    };
                    if let Ok(Some(t)) = berth_archive::paths::clean_entry_path(&target) {
                        links.insert(path, t);
                    }
                }
                EntryType::Regular => {
                    let mut head = vec![0u8; 512.min(h.size as usize)];
                    outer
                        .data()
                        .read_exact(&mut head)
                        .map_err(|e| ImageError::from(berth_archive::ArchiveError::io(format!("reading {path}"), e)))?;
                    if looks_like_layer(&head) {
                        let staged = self.stage_layer(head.chain(outer.data())).map_err(|e| match e {
                            ImageError::Archive(a) if !a.is_no_space() => {
                                ImageError::Invalid(format!("invalid archive: layer {path}: {a}"))
                            }
                            e => e,
                        })?;
                        layers.insert(path, staged);
                    } else if h.size <= METADATA_ENTRY_MAX {
                        kept += h.size;
                        if kept > METADATA_MAX {
                            return Err(ImageError::Invalid(format!(
                                "invalid archive: more than {} MiB of entries that are not layers",
                                METADATA_MAX >> 20
                            )));
                        }
                        let mut data = head;
                        outer.data().read_to_end(&mut data).map_err(|e| {
                            ImageError::from(berth_archive::ArchiveError::io(format!("reading {path}"), e))
                        })?;
                        small.insert(path, data);
                    }
                }
                _ => {}
            }
        }
        if !saw_entry {
            return Err(ImageError::Invalid("invalid archive: it is empty (no manifest.json or index.json)".into()));
        }
        let resolve = |p: &str| -> String {
            let mut p = p.trim_start_matches("./").to_string();
            for _ in 0..16 {
                match links.get(&p) {
                    Some(t) => p = t.clone(),
                    None => break,
                }
            }
            p
        };

        // What to load: (config path, layer paths, tags).
        let mut plan: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
        if let Some(m) = small.get("manifest.json") {
            let entries: Vec<ManifestEntry> = serde_json::from_slice(m)
                .map_err(|e| ImageError::Invalid(format!("invalid archive: manifest.json: {e}")))?;
            for e in entries {
                plan.push((resolve(&e.config), e.layers.iter().map(|l| resolve(l)).collect(), e.repo_tags));
            }
        } else if let Some(i) = small.get("index.json") {
            let idx: OciIndex = serde_json::from_slice(i)
                .map_err(|e| ImageError::Invalid(format!("invalid archive: index.json: {e}")))?;
            for d in idx.manifests {
                let mpath = format!("blobs/sha256/{}", hex(&d.digest));
                let mbytes = small
                    .get(&mpath)
                    .ok_or_else(|| ImageError::Invalid(format!("invalid archive: manifest {} is missing", d.digest)))?;
                if berth_archive::hash::sha256_digest(mbytes) != d.digest {
                    return Err(ImageError::Invalid(format!(
                        "invalid archive: manifest {} does not match its digest",
                        d.digest
                    )));
                }
                let m: OciManifest = serde_json::from_slice(mbytes)
                    .map_err(|e| ImageError::Invalid(format!("invalid archive: manifest {}: {e}", d.digest)))?;
                let tag = d.annotations.as_ref().and_then(|a| a.get("io.containerd.image.name").cloned());
                plan.push((
                    format!("blobs/sha256/{}", hex(&m.config.digest)),
                    m.layers.iter().map(|l| format!("blobs/sha256/{}", hex(&l.digest))).collect(),
                    tag.into_iter().collect(),
                ));
            }
        } else {
            return Err(ImageError::Invalid("invalid archive: no manifest.json or index.json found".into()));
        }

        // Check everything before storing anything.
        let mut images = Vec::new();
        for (cpath, lpaths, tags) in &plan {
            let config = small
                .get(cpath)
                .ok_or_else(|| ImageError::Invalid(format!("invalid archive: image config {cpath} is missing")))?;
            let parsed = ImageConfig::parse(config)?;
            if parsed.rootfs.diff_ids.len() != lpaths.len() {
                return Err(ImageError::Invalid(format!(
                    "invalid archive: {cpath} names {} layers but the manifest lists {}",
                    parsed.rootfs.diff_ids.len(),
                    lpaths.len()
                )));
            }
            for (want, lp) in parsed.rootfs.diff_ids.iter().zip(lpaths) {
                let have = match layers.get(lp) {
                    Some(l) => l.diff_id.clone(),
                    None if self.snapshots.layer(want)?.is_some() => want.clone(),
                    None => return Err(ImageError::Invalid(format!("invalid archive: layer {lp} is missing"))),
                };
                if &have != want {
                    return Err(ImageError::Invalid(format!(
                        "invalid archive: layer {lp} has diff ID {have}, but the image config expects {want}"
                    )));
                }
            }
            let mut refs = Vec::new();
            for t in tags {
                let r = Reference::parse(t)?.with_default_tag();
                if r.digest.is_some() {
                    continue;
                }
                refs.push(r);
            }
            images.push((config.clone(), refs));
        }

        let _g = self.write_lock();
        let mut committed: HashMap<String, ()> = HashMap::new();
        for (_, staged) in layers.drain() {
            if committed.insert(staged.diff_id.clone(), ()).is_some()
                || self.snapshots.layer(&staged.diff_id)?.is_some()
            {
                continue;
            }
            self.snapshots.commit_layer(
                staged.staging,
                &staged.diff_id,
                staged.tar_size,
                staged.size,
                &staged.skeleton,
            )?;
        }
        let mut messages = Vec::new();
        for (config, refs) in images {
            for r in &refs {
                let full = r.full();
                let prev = self.refs_of_lookup(&full);
                if let Some(old) = prev {
                    let new_id = berth_archive::hash::sha256_digest(&config);
                    if old != new_id {
                        messages.push(format!(
                            "The image {} already exists, renaming the old one with ID {} to empty string",
                            r.familiar(),
                            old
                        ));
                    }
                }
            }
            let image = self.add_image_locked(&config, "", &refs)?;
            if refs.is_empty() {
                messages.push(format!("Loaded image ID: {}", image.id));
            }
            for r in refs {
                messages.push(format!("Loaded image: {}", familiar(&r.full())));
            }
        }
        Ok(messages)
    }

    fn refs_of_lookup(&self, full: &str) -> Option<String> {
        self.resolve(full).ok().filter(|i| self.refs_of(&i.id).iter().any(|r| r == full)).map(|i| i.id)
    }

    /// Unpacks one (possibly compressed) layer blob into staging.
    fn stage_layer(&self, blob: impl Read) -> Result<StagedLayer> {
        let hashing = HashingReader::new(blob);
        let mut hashing = hashing;
        let staging = self.snapshots.stage()?;
        let applied = {
            let (_, plain) = decompressed(&mut hashing).map_err(|e| ImageError::io("reading layer", e))?;
            apply(
                plain,
                &staging.path(),
                &ApplyOptions { record_skeleton: true, writeback: true, ..Default::default() },
            )?
        };
        // Drain anything after the tar (compressed streams may carry padding).
        io::copy(&mut hashing, &mut io::sink()).map_err(|e| ImageError::io("reading layer", e))?;
        Ok(StagedLayer {
            staging,
            diff_id: applied.diff_id,
            tar_size: applied.tar_size,
            size: applied.content_size,
            skeleton: applied.skeleton.unwrap_or_default(),
        })
    }
}

struct StagedLayer {
    staging: Staging,
    diff_id: String,
    tar_size: u64,
    size: u64,
    skeleton: berth_archive::skeleton::Skeleton,
}

fn looks_like_layer(head: &[u8]) -> bool {
    if Compression::detect(head) != Compression::None {
        return true;
    }
    head.len() == 512 && (&head[257..262] == b"ustar" || head.iter().all(|&b| b == 0))
}
