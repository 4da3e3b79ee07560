//! The image index and the operations on names and records.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde::{Deserialize, Serialize};

use berth_api::ids::{PrefixMatch, match_prefix};
use berth_api::models::{
    GraphDriver, HistoryItem, ImageDeleteItem, ImageInspect, ImageMetadata, ImageSummary, RootFs as ApiRootFs,
};
use berth_store::content::ContentStore;
use berth_store::db::Db;
use berth_store::schema::{IMAGES, REFS};
use berth_store::snapshot::Snapshotter;

use crate::config::ImageConfig;
use crate::reference::{Reference, familiar};
use crate::{ImageError, Result};

/// What berth records about an image beyond its config.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageMeta {
    /// The image this one was built or committed from (Docker's `Parent`), if local.
    #[serde(default)]
    pub parent: String,
    #[serde(default)]
    pub last_tag_time: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<hex>` of the config.
    pub id: String,
    pub config: Arc<ImageConfig>,
    pub meta: ImageMeta,
    /// Sum of the layers' content sizes.
    pub size: i64,
}

/// A container that uses an image, as the container service reports it to deletions.
#[derive(Debug, Clone)]
pub struct ContainerUse {
    pub container_id: String,
    pub running: bool,
}

#[derive(Default)]
struct Index {
    images: BTreeMap<String, Image>,
    /// Full reference → image ID.
    refs: BTreeMap<String, String>,
}

pub struct ImageStore {
    pub(crate) db: Arc<Db>,
    pub(crate) content: ContentStore,
    pub(crate) snapshots: Arc<Snapshotter>,
    index: RwLock<Index>,
    /// Serializes every change to images and layers, so that layer collection never races
    /// an image being created from the same layers.
    write: Mutex<()>,
    /// Hash states of layer streams committed from staging directories (the builder's).
    pub(crate) prefixes: berth_archive::prefix::PrefixCache,
}

impl ImageStore {
    /// Loads the index, dropping (and reporting) any image whose config or layers are gone
    /// (or damaged: see `Snapshotter::recover_unsynced`), and collecting layers and configs
    /// no image refers to.
    pub fn open(db: Arc<Db>, content: ContentStore, snapshots: Arc<Snapshotter>) -> Result<(ImageStore, Vec<String>)> {
        let mut warnings = Vec::new();
        for l in snapshots.recover_unsynced()? {
            warnings.push(format!("layer {l} was not yet on disk when the host went down and is damaged: removed, with the images using it"));
        }
        let layer_sizes: BTreeMap<String, u64> = snapshots.layers()?.into_iter().map(|l| (l.diff_id, l.size)).collect();
        let mut index = Index::default();
        for (id, meta) in db.list::<ImageMeta>(IMAGES)? {
            let config = match content.read(&id).map_err(ImageError::from).and_then(|b| ImageConfig::parse(&b)) {
                Ok(c) => c,
                Err(e) => {
                    warnings.push(format!("image {id} is unusable and was dropped: {e}"));
                    db.delete(IMAGES, &id)?;
                    continue;
                }
            };
            if let Some(missing) = config.rootfs.diff_ids.iter().find(|d| !layer_sizes.contains_key(*d)) {
                warnings.push(format!("image {id} lost layer {missing} and was dropped"));
                db.delete(IMAGES, &id)?;
                continue;
            }
            let size = config.rootfs.diff_ids.iter().map(|d| layer_sizes[d] as i64).sum();
            index.images.insert(id.clone(), Image { id, config: Arc::new(config), meta, size });
        }
        for (r, id) in db.list::<String>(REFS)? {
            if index.images.contains_key(&id) {
                index.refs.insert(r, id);
            } else {
                db.delete(REFS, &r)?;
            }
        }
        let store = ImageStore {
            db,
            content,
            snapshots,
            index: RwLock::new(index),
            write: Mutex::new(()),
            prefixes: Default::default(),
        };
        store.collect_garbage()?;
        Ok((store, warnings))
    }

    pub(crate) fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_index(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshots(&self) -> &Snapshotter {
        &self.snapshots
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// Finds an image by reference (`busybox`, `busybox:1`, `x@sha256:…`), full ID
    /// (`sha256:…`), or unique ID prefix, in Docker's order.
    pub fn resolve(&self, name: &str) -> Result<Image> {
        let idx = self.read_index();
        if let Some(hex) = name.strip_prefix("sha256:")
            && berth_api::ids::is_id_prefix(hex)
        {
            return match match_prefix(hex, idx.images.keys().map(|k| (&k[7..], k))) {
                PrefixMatch::One(id) => Ok(idx.images[id].clone()),
                _ => Err(ImageError::NotFound(name.to_string())),
            };
        }
        if let Ok(r) = Reference::parse(name) {
            let r = r.with_default_tag();
            if let Some(id) = idx.refs.get(&r.full()) {
                return Ok(idx.images[id].clone());
            }
            if let Some(d) = &r.digest {
                // `name@digest` where the digest is the image ID itself (as Docker allows).
                if let Some(img) = idx.images.get(d) {
                    return Ok(img.clone());
                }
            }
        }
        if berth_api::ids::is_id_prefix(name) {
            match match_prefix(name, idx.images.keys().map(|k| (&k[7..], k))) {
                PrefixMatch::One(id) => return Ok(idx.images[id].clone()),
                PrefixMatch::Ambiguous => {
                    return Err(ImageError::Invalid(format!("ambiguous image id prefix {name:?}")));
                }
                PrefixMatch::None => {}
            }
        }
        let shown =
            Reference::parse(name).map(|r| r.with_default_tag().familiar()).unwrap_or_else(|_| name.to_string());
        Err(ImageError::NotFound(shown))
    }

    pub fn get(&self, id: &str) -> Option<Image> {
        self.read_index().images.get(id).cloned()
    }

    pub fn all(&self) -> Vec<Image> {
        self.read_index().images.values().cloned().collect()
    }

    /// Full references (tags and digests) pointing at `id`.
    pub fn refs_of(&self, id: &str) -> Vec<String> {
        self.read_index().refs.iter().filter(|(_, v)| *v == id).map(|(k, _)| k.clone()).collect()
    }

    /// Familiar `repo:tag` names of an image, sorted.
    pub fn tags_of(&self, id: &str) -> Vec<String> {
        self.refs_of(id).iter().filter(|r| !r.contains('@')).map(|r| familiar(r)).collect()
    }

    pub fn digests_of(&self, id: &str) -> Vec<String> {
        self.refs_of(id).iter().filter(|r| r.contains('@')).map(|r| familiar(r)).collect()
    }

    /// Every tag in the repository `repo` (a familiar or full repository name).
    pub fn tags_in_repository(&self, repo: &Reference) -> Vec<(String, String)> {
        let prefix = format!("{}:", repo.repository());
        self.read_index()
            .refs
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && !k.contains('@'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Images whose recorded parent is `id` (build and commit chains).
    pub fn children(&self, id: &str) -> Vec<String> {
        self.read_index().images.values().filter(|i| i.meta.parent == id).map(|i| i.id.clone()).collect()
    }

    /// Records a new image whose layers are already committed, and points `refs` at it.
    pub fn add_image(&self, config_bytes: &[u8], parent: &str, refs: &[Reference]) -> Result<Image> {
        let _g = self.write_lock();
        self.add_image_locked(config_bytes, parent, refs)
    }

    pub(crate) fn add_image_locked(&self, config_bytes: &[u8], parent: &str, refs: &[Reference]) -> Result<Image> {
        let config = ImageConfig::parse(config_bytes)?;
        let mut size = 0i64;
        for d in &config.rootfs.diff_ids {
            let l = self
                .snapshots
                .layer(d)?
                .ok_or_else(|| ImageError::Invalid(format!("image refers to missing layer {d}")))?;
            size += l.size as i64;
        }
        let id = self.content.put(config_bytes)?;
        let existing = self.get(&id);
        let now = berth_api::time::rfc3339_now();
        let meta = match &existing {
            Some(e) => ImageMeta {
                last_tag_time: if refs.is_empty() { e.meta.last_tag_time.clone() } else { Some(now) },
                ..e.meta.clone()
            },
            None => {
                ImageMeta { parent: parent.to_string(), last_tag_time: if refs.is_empty() { None } else { Some(now) } }
            }
        };
        let full: Vec<String> = refs.iter().map(|r| r.clone().with_default_tag().full()).collect();
        self.db.batch(|b| {
            b.put(IMAGES, &id, &meta)?;
            for r in &full {
                b.put(REFS, r, &id)?;
            }
            Ok(())
        })?;
        let image = Image { id: id.clone(), config: Arc::new(config), meta, size };
        let mut idx = self.write_index();
        idx.images.insert(id.clone(), image.clone());
        for r in full {
            idx.refs.insert(r, id.clone());
        }
        Ok(image)
    }

    /// Points `target` at the image `source` resolves to. Digest references cannot be set.
    pub fn tag(&self, source: &str, target: &str) -> Result<Image> {
        let image = self.resolve(source)?;
        let r = Reference::parse(target)?;
        if r.digest.is_some() {
            return Err(ImageError::InvalidReference("refusing to create a tag with a digest reference".into()));
        }
        let r = r.with_default_tag();
        self.set_ref(&r.full(), &image.id)?;
        Ok(image)
    }

    /// Records a digest reference (`repo@sha256:…`) after a pull or push.
    pub fn set_ref(&self, full: &str, id: &str) -> Result<()> {
        let _g = self.write_lock();
        let mut meta = self.get(id).ok_or_else(|| ImageError::NotFound(id.to_string()))?.meta;
        meta.last_tag_time = Some(berth_api::time::rfc3339_now());
        self.db.batch(|b| {
            b.put(REFS, full, &id.to_string())?;
            b.put(IMAGES, id, &meta)
        })?;
        let mut idx = self.write_index();
        idx.refs.insert(full.to_string(), id.to_string());
        if let Some(img) = idx.images.get_mut(id) {
            img.meta = meta;
        }
        Ok(())
    }

    fn remove_refs(&self, refs: &[String]) -> Result<()> {
        self.db.batch(|b| {
            for r in refs {
                b.delete(REFS, r)?;
            }
            Ok(())
        })?;
        let mut idx = self.write_index();
        for r in refs {
            idx.refs.remove(r);
        }
        Ok(())
    }

    /// Deletes the image record and config, then every layer no remaining image uses.
    pub(crate) fn remove_image(&self, id: &str) -> Result<()> {
        let refs = self.refs_of(id);
        self.db.batch(|b| {
            for r in &refs {
                b.delete(REFS, r)?;
            }
            b.delete(IMAGES, id)
        })?;
        {
            let mut idx = self.write_index();
            idx.images.remove(id);
            for r in &refs {
                idx.refs.remove(r);
            }
        }
        self.collect_garbage()?;
        Ok(())
    }

    /// Removes layers and config blobs no image refers to. Callers hold the write lock or
    /// run before serving.
    fn collect_garbage(&self) -> Result<()> {
        let (used_layers, used_blobs) = {
            let idx = self.read_index();
            let layers: BTreeSet<String> =
                idx.images.values().flat_map(|i| i.config.rootfs.diff_ids.iter().cloned()).collect();
            let blobs: BTreeSet<String> = idx.images.keys().cloned().collect();
            (layers, blobs)
        };
        for l in self.snapshots.layers()? {
            if !used_layers.contains(&l.diff_id) {
                self.snapshots.remove_layer(&l.diff_id)?;
            }
        }
        for b in self.content.list()? {
            if !used_blobs.contains(&b) && !self.is_kept_blob(&b) {
                self.content.delete(&b)?;
            }
        }
        Ok(())
    }

    /// Blobs other services keep in the content store (manifests, build cache) are
    /// registered here; until then every unreferenced blob is an orphaned config.
    fn is_kept_blob(&self, _digest: &str) -> bool {
        false
    }

    /// `docker rmi`: untag or delete, with Docker's conflict rules.
    ///
    /// `users` reports the containers using an image (any state).
    pub fn delete(
        &self,
        name: &str,
        force: bool,
        prune_parents: bool,
        users: &dyn Fn(&str) -> Vec<ContainerUse>,
    ) -> Result<Vec<ImageDeleteItem>> {
        let _g = self.write_lock();
        let image = self.resolve(name)?;
        let short = berth_api::ids::short_id(&image.id).to_string();
        let refs = self.refs_of(&image.id);
        let by_ref =
            Reference::parse(name).ok().map(|r| r.with_default_tag().full()).filter(|full| refs.contains(full));
        let mut out = Vec::new();
        let using = users(&image.id);
        if let Some(running) = using.iter().find(|u| u.running)
            && (by_ref.is_none() || refs.len() == 1)
        {
            return Err(ImageError::Conflict(format!(
                "conflict: unable to delete {short} (cannot be forced) - image is being used by running container {}",
                berth_api::ids::short_id(&running.container_id)
            )));
        }
        if let Some(r) = &by_ref {
            // Removing the last tag of a repository takes that repository's digest
            // references (`repo@sha256:…`, recorded by pull and push) with it, as Docker does.
            let mut removing = vec![r.clone()];
            if !r.contains('@') {
                let repo = |x: &str| Reference::parse(x).map(|p| p.repository()).unwrap_or_default();
                let mine = repo(r);
                if !refs.iter().any(|x| x != r && !x.contains('@') && repo(x) == mine) {
                    removing.extend(refs.iter().filter(|x| x.contains('@') && repo(x) == mine).cloned());
                }
            }
            // Removing one name of several only untags.
            if refs.len() > removing.len() {
                self.remove_refs(&removing)?;
                out.extend(removing.iter().map(|x| ImageDeleteItem { untagged: Some(familiar(x)), deleted: None }));
                return Ok(out);
            }
            if let Some(u) = using.first() {
                if !force {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to remove repository reference {:?} (must force) - container {} is using its referenced image {short}",
                        name,
                        berth_api::ids::short_id(&u.container_id)
                    )));
                }
                self.remove_refs(std::slice::from_ref(r))?;
                out.push(ImageDeleteItem { untagged: Some(familiar(r)), deleted: None });
                return Ok(out);
            }
        } else {
            let tags: Vec<&String> = refs.iter().filter(|r| !r.contains('@')).collect();
            if tags.len() > 1 && !force {
                return Err(ImageError::Conflict(format!(
                    "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                )));
            }
            if let Some(u) = using.first() {
                if !force {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {}",
                        berth_api::ids::short_id(&u.container_id)
                    )));
                }
                // Forced while a stopped container uses it: untag, keep the image.
                self.remove_refs(&refs)?;
                out.extend(refs.iter().map(|r| ImageDeleteItem { untagged: Some(familiar(r)), deleted: None }));
                return Ok(out);
            }
        }
        if !self.children(&image.id).is_empty() {
            if !refs.is_empty() && by_ref.is_some() {
                self.remove_refs(&refs)?;
                out.extend(refs.iter().map(|r| ImageDeleteItem { untagged: Some(familiar(r)), deleted: None }));
                return Ok(out);
            }
            return Err(ImageError::Conflict(format!(
                "conflict: unable to delete {short} (cannot be forced) - image has dependent child images"
            )));
        }
        out.extend(refs.iter().map(|r| ImageDeleteItem { untagged: Some(familiar(r)), deleted: None }));
        self.remove_image(&image.id)?;
        out.push(ImageDeleteItem { untagged: None, deleted: Some(image.id.clone()) });
        // Parents left dangling and unused go too, as Docker's rmi does by default.
        let mut parent = image.meta.parent.clone();
        while prune_parents && !parent.is_empty() {
            let Some(p) = self.get(&parent) else { break };
            if !self.refs_of(&p.id).is_empty() || !self.children(&p.id).is_empty() || !users(&p.id).is_empty() {
                break;
            }
            self.remove_image(&p.id)?;
            out.push(ImageDeleteItem { untagged: None, deleted: Some(p.id.clone()) });
            parent = p.meta.parent.clone();
        }
        Ok(out)
    }

    /// `image prune`: dangling images (or, with `all`, every image no container uses).
    pub fn prune(
        &self,
        all: bool,
        keep: &dyn Fn(&Image) -> bool,
        users: &dyn Fn(&str) -> Vec<ContainerUse>,
    ) -> Result<(Vec<ImageDeleteItem>, i64)> {
        let mut deleted = Vec::new();
        let mut reclaimed = 0i64;
        loop {
            let candidates: Vec<Image> = {
                let idx = self.read_index();
                idx.images
                    .values()
                    .filter(|i| {
                        let tagged = idx.refs.values().any(|v| *v == i.id);
                        (all || !tagged) && !idx.images.values().any(|c| c.meta.parent == i.id)
                    })
                    .cloned()
                    .collect()
            };
            let mut progressed = false;
            for img in candidates {
                if !users(&img.id).is_empty() || !keep(&img) {
                    continue;
                }
                let _g = self.write_lock();
                let before: i64 = self.snapshots.layers()?.iter().map(|l| l.size as i64).sum();
                let refs = self.refs_of(&img.id);
                deleted.extend(refs.iter().map(|r| ImageDeleteItem { untagged: Some(familiar(r)), deleted: None }));
                self.remove_image(&img.id)?;
                let after: i64 = self.snapshots.layers()?.iter().map(|l| l.size as i64).sum();
                reclaimed += before - after;
                deleted.push(ImageDeleteItem { untagged: None, deleted: Some(img.id.clone()) });
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        Ok((deleted, reclaimed))
    }

    pub fn summary(&self, image: &Image, containers: i64) -> ImageSummary {
        ImageSummary {
            id: image.id.clone(),
            parent_id: image.meta.parent.clone(),
            repo_tags: self.tags_of(&image.id),
            repo_digests: self.digests_of(&image.id),
            created: (image.config.created_nanos() / 1_000_000_000) as i64,
            size: image.size,
            shared_size: -1,
            virtual_size: image.size,
            labels: image.config.config.labels.clone(),
            containers,
        }
    }

    pub fn inspect(&self, image: &Image) -> ImageInspect {
        let c = &image.config;
        let layer_dirs: Vec<String> = c
            .rootfs
            .diff_ids
            .iter()
            .rev()
            .filter_map(|d| self.snapshots.layer_dir(d).ok())
            .map(|p| p.display().to_string())
            .collect();
        let mut data = BTreeMap::new();
        if let Some((upper, lower)) = layer_dirs.split_first() {
            data.insert("UpperDir".to_string(), upper.clone());
            if !lower.is_empty() {
                data.insert("LowerDir".to_string(), lower.join(":"));
            }
        }
        ImageInspect {
            id: image.id.clone(),
            repo_tags: self.tags_of(&image.id),
            repo_digests: self.digests_of(&image.id),
            parent: image.meta.parent.clone(),
            comment: c.comment.clone(),
            created: c.created.clone().unwrap_or_default(),
            container: c.container.clone(),
            container_config: Some(c.container_config.clone().unwrap_or_default()),
            docker_version: c.docker_version.clone(),
            author: c.author.clone(),
            config: c.config.clone(),
            architecture: c.architecture.clone(),
            variant: c.variant.clone(),
            os: c.os.clone(),
            os_version: String::new(),
            size: image.size,
            virtual_size: image.size,
            graph_driver: GraphDriver { name: "overlay2".into(), data },
            root_fs: ApiRootFs { kind: "layers".into(), layers: c.rootfs.diff_ids.clone() },
            metadata: ImageMetadata {
                last_tag_time: image
                    .meta
                    .last_tag_time
                    .clone()
                    .unwrap_or_else(|| berth_api::time::ZERO_TIME.to_string()),
            },
        }
    }

    /// `docker history`: newest first; the top row carries the image ID and tags, rows of
    /// older steps show `<missing>` unless a local parent image matches.
    pub fn history(&self, image: &Image) -> Vec<HistoryItem> {
        let c = &image.config;
        let mut layer_sizes = c
            .rootfs
            .diff_ids
            .iter()
            .map(|d| self.snapshots.layer(d).ok().flatten().map(|l| l.size as i64).unwrap_or(0));
        let mut rows = Vec::new();
        let history = if c.history.is_empty() {
            c.rootfs.diff_ids.iter().map(|_| crate::config::History::default()).collect()
        } else {
            c.history.clone()
        };
        for h in &history {
            let size = if h.empty_layer { 0 } else { layer_sizes.next().unwrap_or(0) };
            rows.push(HistoryItem {
                id: "<missing>".into(),
                created: h
                    .created
                    .as_deref()
                    .and_then(berth_api::time::parse_rfc3339)
                    .map(|n| (n / 1_000_000_000) as i64)
                    .unwrap_or(0),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: Vec::new(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        rows.reverse();
        // Walk local parents to give older rows their image IDs.
        let mut current = Some(image.clone());
        let mut i = 0;
        while let (Some(img), true) = (current.clone(), i < rows.len()) {
            rows[i].id = img.id.clone();
            rows[i].tags = self.tags_of(&img.id);
            let steps = if img.meta.parent.is_empty() {
                0
            } else {
                img.config
                    .history
                    .len()
                    .saturating_sub(self.get(&img.meta.parent).map(|p| p.config.history.len()).unwrap_or(usize::MAX))
            };
            if steps == 0 {
                break;
            }
            i += steps;
            current = self.get(&img.meta.parent);
        }
        rows
    }
}
