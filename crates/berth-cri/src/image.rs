//! The ImageService over berth's image store (the Docker API's own).

use std::collections::HashMap;
use std::path::Path;

use berth_distribution::progress::Progress;
use berth_distribution::pull::{PullOptions, Stores};
use berth_image::Reference;
use tonic::Status;

use crate::Cri;
use crate::error::{invalid, status};
use crate::proto::{self, AuthConfig, FilesystemIdentifier, FilesystemUsage, ImageSpec, Int64Value, UInt64Value};

fn is_not_found(e: &berth_image::ImageError) -> bool {
    berth_api::HasKind::kind(e) == berth_api::ErrorKind::NotFound
}

impl Cri {
    fn to_cri_image(&self, img: &berth_image::Image) -> proto::Image {
        let refs = self.images.refs_of(&img.id);
        let user = img.config.config.user.split(':').next().unwrap_or("").to_string();
        let (uid, username) = match user.parse::<i64>() {
            Ok(n) => (Some(Int64Value { value: n }), String::new()),
            Err(_) => (None, user),
        };
        proto::Image {
            id: img.id.clone(),
            repo_tags: refs.iter().filter(|r| !r.contains('@')).cloned().collect(),
            repo_digests: refs.iter().filter(|r| r.contains('@')).cloned().collect(),
            size: img.size.max(0) as u64,
            uid,
            username,
            spec: Some(ImageSpec { image: img.id.clone(), ..Default::default() }),
            pinned: false,
        }
    }

    pub async fn pull_image(&self, spec: Option<ImageSpec>, auth: Option<AuthConfig>) -> Result<String, Status> {
        let name = spec.map(|s| s.image).unwrap_or_default();
        if name.is_empty() {
            return Err(invalid("the image to pull is empty"));
        }
        let reference = Reference::parse(&name).map_err(status)?;
        let a = auth.unwrap_or_default();
        let auth = berth_distribution::AuthConfig {
            username: a.username,
            password: a.password,
            auth: a.auth,
            identity_token: a.identity_token,
            registry_token: a.registry_token,
            server_address: a.server_address,
            ..Default::default()
        };
        let opts = PullOptions { reference: reference.clone(), all_tags: false, platform: None, auth };
        let stores = Stores { images: self.images.clone(), db: self.db.clone() };
        // Nobody reads the progress of a CRI pull.
        let (progress, _rx) = Progress::channel();
        self.distribution.pull(&stores, &opts, &progress).await.map_err(status)?;
        let img = self.images.resolve(&reference.with_default_tag().full()).map_err(status)?;
        Ok(img.id)
    }

    /// The image `spec` names, or `None` if there is none (which is no error for the CRI).
    pub fn image_status(
        &self,
        spec: Option<ImageSpec>,
        verbose: bool,
    ) -> Result<(Option<proto::Image>, HashMap<String, String>), Status> {
        let name = spec.map(|s| s.image).unwrap_or_default();
        if name.is_empty() {
            return Err(invalid("the image is empty"));
        }
        let img = match self.images.resolve(&name) {
            Ok(i) => i,
            Err(e) if is_not_found(&e) => return Ok((None, HashMap::new())),
            Err(e) => return Err(status(e)),
        };
        let mut info = HashMap::new();
        if verbose {
            info.insert("info".to_string(), serde_json::json!({ "imageSpec": &*img.config }).to_string());
        }
        Ok((Some(self.to_cri_image(&img)), info))
    }

    pub fn list_images(&self, filter: Option<ImageSpec>) -> Vec<proto::Image> {
        let name = filter.map(|s| s.image).unwrap_or_default();
        if !name.is_empty() {
            return self.images.resolve(&name).ok().map(|i| self.to_cri_image(&i)).into_iter().collect();
        }
        self.images.all().iter().map(|i| self.to_cri_image(i)).collect()
    }

    /// Removes the image with all its names. An image that is not there is already removed.
    pub fn remove_image(&self, spec: Option<ImageSpec>) -> Result<(), Status> {
        let name = spec.map(|s| s.image).unwrap_or_default();
        if name.is_empty() {
            return Err(invalid("the image is empty"));
        }
        let img = match self.images.resolve(&name) {
            Ok(i) => i,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(status(e)),
        };
        let users = |id: &str| self.containers.users_of_image(id);
        self.images.delete(&img.id, true, false, &users).map_err(status)?;
        Ok(())
    }

    /// The bytes and inodes under the snapshot directory (layers and containers' changes).
    pub async fn image_fs_info(&self) -> Result<FilesystemUsage, Status> {
        let root = self.data_root.join("snapshots");
        let r2 = root.clone();
        let (bytes, inodes) = tokio::task::spawn_blocking(move || usage(&r2))
            .await
            .map_err(|e| Status::internal(format!("measuring {}: {e}", root.display())))?;
        Ok(FilesystemUsage {
            timestamp: berth_api::time::now_nanos() as i64,
            fs_id: Some(FilesystemIdentifier { mountpoint: root.display().to_string() }),
            used_bytes: Some(UInt64Value { value: bytes }),
            inodes_used: Some(UInt64Value { value: inodes }),
        })
    }
}

/// Bytes and inodes below `dir` (not following symlinks, each hard-linked inode once).
pub(crate) fn usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let (mut bytes, mut inodes) = (0u64, 0u64);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if seen.insert((md.dev(), md.ino())) {
                inodes += 1;
                bytes += md.blocks() * 512;
            }
            if md.is_dir() {
                stack.push(e.path());
            }
        }
    }
    (bytes, inodes)
}
