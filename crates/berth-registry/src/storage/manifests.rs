//! Manifest revisions, tags and referrer entries of a repository.

use super::{Storage, read_link, remove_all};
use crate::error::{RegistryError, Result};
use crate::names::{Algorithm, Digest};
use std::fs;
use std::path::Path;

/// A manifest as stored: its exact bytes and the media type it was pushed with.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Storage {
    /// The digest a tag points at; `None` if the tag does not exist.
    pub fn resolve_tag(&self, name: &str, tag: &str) -> Result<Option<Digest>> {
        read_link(&self.tag_link(name, tag))
    }

    pub fn has_manifest(&self, name: &str, d: &Digest) -> bool {
        self.revision_dir(name, d).join("link").is_file()
    }

    /// A manifest revision of `name`; `None` if the repository does not have it.
    pub fn get_manifest(&self, name: &str, d: &Digest) -> Result<Option<StoredManifest>> {
        let dir = self.revision_dir(name, d);
        if read_link(&dir.join("link"))?.is_none() {
            return Ok(None);
        }
        let Some(bytes) = self.read_blob(d)? else {
            return Ok(None);
        };
        let media_type = match fs::read_to_string(dir.join("media_type")) {
            Ok(m) => m.trim().to_string(),
            Err(_) => crate::manifest::media_type_of(&bytes).unwrap_or_default(),
        };
        Ok(Some(StoredManifest { digest: d.clone(), media_type, bytes }))
    }

    /// Stores a validated manifest: bytes, then revision, then referrer entry, then tag.
    pub fn put_manifest(
        &self,
        name: &str,
        m: &StoredManifest,
        tag: Option<&str>,
        subject: Option<&Digest>,
    ) -> Result<()> {
        self.put_blob_bytes(&m.digest, &m.bytes)?;
        let rev = self.revision_dir(name, &m.digest);
        self.write_atomic(&rev.join("media_type"), m.media_type.as_bytes())?;
        self.write_atomic(&rev.join("link"), m.digest.to_string().as_bytes())?;
        if let Some(s) = subject {
            let entry = self.referrers_dir(name, s).join(entry_name(&m.digest));
            self.write_atomic(&entry, m.digest.to_string().as_bytes())?;
        }
        if let Some(t) = tag {
            self.write_atomic(&self.tag_link(name, t), m.digest.to_string().as_bytes())?;
        }
        Ok(())
    }

    /// Removes a revision, every tag pointing at it, and its referrer entry (the caller
    /// passes the manifest's `subject`, if it had one). False if there was no such revision.
    pub fn delete_manifest(&self, name: &str, d: &Digest, subject: Option<&Digest>) -> Result<bool> {
        if !self.has_manifest(name, d) {
            return Ok(false);
        }
        for tag in self.tags(name)? {
            if self.resolve_tag(name, &tag)?.as_ref() == Some(d) {
                self.untag(name, &tag)?;
            }
        }
        if let Some(s) = subject {
            remove_all(&self.referrers_dir(name, s).join(entry_name(d)))
                .map_err(|e| RegistryError::io("remove referrer", e))?;
        }
        remove_all(&self.revision_dir(name, d)).map_err(|e| RegistryError::io("remove revision", e))?;
        Ok(true)
    }

    /// Removes a tag; the manifest stays. False if there was no such tag.
    pub fn untag(&self, name: &str, tag: &str) -> Result<bool> {
        let link = self.tag_link(name, tag);
        if !link.is_file() {
            return Ok(false);
        }
        remove_all(link.parent().expect("tag link has a parent")).map_err(|e| RegistryError::io("remove tag", e))?;
        Ok(true)
    }

    /// All tags of `name`, sorted.
    pub fn tags(&self, name: &str) -> Result<Vec<String>> {
        let mut tags = list_dir(&self.repo_dir(name).join("_manifests/tags"))?;
        tags.retain(|t| self.tag_link(name, t).is_file());
        tags.sort();
        Ok(tags)
    }

    /// All manifest revisions of `name`.
    pub fn revisions(&self, name: &str) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.repo_dir(name).join("_manifests/revisions").join(alg.as_str());
            for hex in list_dir(&dir)? {
                if let Some(d) = read_link(&dir.join(&hex).join("link"))? {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Digests of the manifests in `name` whose subject is `subject`, sorted.
    pub fn referrers(&self, name: &str, subject: &Digest) -> Result<Vec<Digest>> {
        let dir = self.referrers_dir(name, subject);
        let mut out = Vec::new();
        for entry in list_dir(&dir)? {
            if let Some(d) = read_link(&dir.join(entry))?
                && self.has_manifest(name, &d)
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }
}

fn entry_name(d: &Digest) -> String {
    format!("{}-{}", d.algorithm.as_str(), d.hex)
}

/// Names in a directory, skipping none; an absent directory is empty.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<String>> {
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| RegistryError::io(format!("list {}", dir.display()), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(RegistryError::io(format!("list {}", dir.display()), e)),
    }
}
