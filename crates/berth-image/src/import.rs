//! `docker import`: a filesystem tarball (possibly compressed) becomes a one-layer image.

use std::io::Read;

use berth_archive::apply::{ApplyOptions, apply};
use berth_archive::compress::decompressed;

use crate::config::{History, ImageConfig};
use crate::reference::Reference;
use crate::{Image, ImageError, ImageStore, Result};

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `repo[:tag]` to name the image, if any.
    pub reference: Option<String>,
    /// Dockerfile instructions applied to the config (`-c`).
    pub changes: Vec<String>,
    /// Commit message (`-m`).
    pub message: String,
    /// Where the data came from, for the history comment (`-` or a URL).
    pub source: String,
}

impl ImageStore {
    /// Unpacks `input` into a new layer and records an image for it. Everything the user
    /// supplied is checked before any byte is read, and nothing is stored unless the whole
    /// archive unpacks.
    pub fn import(&self, input: impl Read, opts: &ImportOptions) -> Result<Image> {
        let reference = opts.reference.as_deref().filter(|s| !s.is_empty()).map(Reference::parse).transpose()?;
        if let Some(r) = &reference
            && r.digest.is_some()
        {
            return Err(ImageError::InvalidReference("import cannot tag with a digest reference".into()));
        }
        let mut config = ImageConfig::new_local();
        for c in &opts.changes {
            berth_dockerfile::changes::apply_change(&mut config.config, c)?;
        }

        let mut counted = CountingReader { inner: input, count: 0 };
        let (_, plain) = decompressed(&mut counted).map_err(|e| ImageError::io("reading import data", e))?;
        let staging = self.snapshots.stage()?;
        let applied = apply(
            plain,
            &staging.path(),
            &ApplyOptions { record_skeleton: true, writeback: true, ..Default::default() },
        )?;
        if counted.count == 0 {
            return Err(ImageError::Invalid("import: no data received (the archive is empty)".into()));
        }
        let skeleton = applied.skeleton.unwrap_or_default();

        config.rootfs.diff_ids = vec![applied.diff_id.clone()];
        config.comment = opts.message.clone();
        let comment =
            if opts.message.is_empty() { format!("Imported from {}", opts.source) } else { opts.message.clone() };
        config.history =
            vec![History { created: config.created.clone(), comment: Some(comment), ..Default::default() }];

        let _g = self.write_lock();
        self.snapshots.commit_layer(staging, &applied.diff_id, applied.tar_size, applied.content_size, &skeleton)?;
        self.add_image_locked(&config.to_bytes(), "", &reference.into_iter().collect::<Vec<_>>())
    }
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}
