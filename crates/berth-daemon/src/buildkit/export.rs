//! Exporters: where a solved image goes. `moby` (buildx's "docker" driver default, `--load`,
//! and `image` on this driver) tags it in berth's image store (its `push=true` is buildx's
//! to carry out, through the Engine API, as on dockerd); `local` sends its root
//! filesystem to a directory of the client's, through the session's `FileSend`; `tar` sends
//! the same as a tar stream.

use std::collections::HashMap;
use std::sync::Arc;

use berth_builder::rootfs::Tree;
use berth_buildkit::fsutil::{Entry, stat_of};
use berth_buildkit::grpc::{Code, Error, Result};
use berth_buildkit::proto::Exporter;
use berth_image::Reference;

use super::Job;
use crate::Daemon;

fn internal(e: impl std::fmt::Display) -> Error {
    Error::status(Code::Internal, e.to_string())
}

/// Runs exporter number `index` of a solve on `image` (a solve without a result exports nothing).
pub(super) async fn run(
    d: &Arc<Daemon>,
    job: &Job,
    index: usize,
    e: &Exporter,
    image: Option<&str>,
    response: &mut HashMap<String, String>,
) -> Result<()> {
    let Some(image) = image else { return Ok(()) };
    match e.r#type.as_str() {
        "moby" | "image" => tag(d, job, e, image, response).await,
        "local" => local(d, job, index, image).await,
        "tar" => tarball(d, job, index, image).await,
        "cacheonly" => Ok(()),
        t => Err(Error::status(Code::Unimplemented, format!("exporter {t:?} is not supported by berth"))),
    }
}

async fn tag(
    d: &Arc<Daemon>,
    job: &Job,
    e: &Exporter,
    image: &str,
    response: &mut HashMap<String, String>,
) -> Result<()> {
    let v = job.progress.start(&job.id, "exporting to image");
    job.progress.status(&v, &format!("writing image {image}"));
    let mut full_names = Vec::new();
    // `push=true` is buildx's to do on this driver, as with dockerd's: it pushes the
    // named image through the Engine API once the solve returns ("pushing … with docker").
    let names: Vec<String> = e
        .attrs
        .get("name")
        .map(|n| n.split(',').filter(|n| !n.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    for n in &names {
        let r = Reference::parse(n)
            .map_err(|err| Error::status(Code::InvalidArgument, format!("invalid tag {n:?}: {err}")))?;
        let full = r.with_default_tag();
        d.images.tag(image, &full.full()).map_err(internal)?;
        full_names.push(full.full());
        job.progress.status(&v, &format!("naming to {}", full.full()));
        let attrs = std::collections::BTreeMap::from([("name".to_string(), full.familiar())]);
        d.events.emit("image", "tag", image, attrs);
    }
    job.progress.complete(v, false, None);
    // Normalised, as dockerd's exporter names them (`docker.io/library/x:latest`).
    if !full_names.is_empty() {
        response.insert("image.name".into(), full_names.join(","));
    }
    Ok(())
}

/// The image's root filesystem in fsutil's walk order.
fn entries(d: &Daemon, image: &str) -> Result<Vec<Entry>> {
    let img = d.images.get(image).ok_or_else(|| Error::status(Code::NotFound, format!("No such image: {image}")))?;
    let tree = Tree::of_image(&d.images, Some(&img)).map_err(internal)?;
    let mut out = Vec::new();
    subtree(&tree, "", &mut out);
    Ok(out)
}

/// Depth first, a directory before its children, names sorted (`read_dir` sorts bytewise).
fn subtree(tree: &Tree, dir: &str, out: &mut Vec<Entry>) {
    for name in tree.read_dir(dir) {
        let rel = if dir.is_empty() { name } else { format!("{dir}/{name}") };
        let Some(f) = tree.lookup(&rel) else { continue };
        let link = if f.meta.file_type().is_symlink() {
            std::fs::read_link(&f.host).map(|l| l.to_string_lossy().into_owned()).unwrap_or_default()
        } else {
            String::new()
        };
        let is_dir = f.meta.is_dir();
        out.push(Entry { stat: stat_of(&rel, &f.meta, link), source: f.meta.is_file().then(|| f.host.clone()) });
        if is_dir {
            subtree(tree, &rel, out);
        }
    }
}

/// A tar header for an exported entry (devices, pipes and sockets are left out).
fn header(e: &Entry) -> Option<berth_archive::header::Header> {
    use berth_archive::header::{EntryType, Header};
    use berth_buildkit::fsutil::mode;
    let st = &e.stat;
    let kind = if st.mode & mode::DIR != 0 {
        EntryType::Directory
    } else if st.mode & mode::SYMLINK != 0 {
        EntryType::Symlink
    } else if st.mode & mode::TYPE == 0 {
        EntryType::Regular
    } else {
        return None;
    };
    let mut h = Header::new(if kind == EntryType::Directory { format!("{}/", st.path) } else { st.path.clone() }, kind);
    h.mode = mode::permissions(st.mode);
    h.uid = st.uid as u64;
    h.gid = st.gid as u64;
    h.link = st.linkname.clone();
    h.size = if kind == EntryType::Regular { st.size as u64 } else { 0 };
    h.mtime = st.mod_time.div_euclid(1_000_000_000);
    Some(h)
}

async fn local(d: &Arc<Daemon>, job: &Job, index: usize, image: &str) -> Result<()> {
    let session = super::frontend::session_of(d, job).await?;
    let v = job.progress.start(&job.id, "exporting to client directory");
    let (d2, id) = (d.clone(), image.to_string());
    let list = tokio::task::spawn_blocking(move || entries(&d2, &id)).await.map_err(internal)??;
    let r = session.export_dir(index, list).await;
    job.progress.complete(v, false, r.as_ref().err().map(|e| e.to_string()));
    r
}

async fn tarball(d: &Arc<Daemon>, job: &Job, index: usize, image: &str) -> Result<()> {
    let session = super::frontend::session_of(d, job).await?;
    let v = job.progress.start(&job.id, "exporting to client tarball");
    let (d2, id) = (d.clone(), image.to_string());
    let list = tokio::task::spawn_blocking(move || entries(&d2, &id)).await.map_err(internal)??;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(8);
    tokio::task::spawn_blocking(move || write_tar(list, tx));
    let r = async {
        let mut w = session.export_file(index).await?;
        while let Some(chunk) = rx.recv().await {
            w.write(chunk.map_err(internal)?).await?;
        }
        w.finish().await
    }
    .await;
    job.progress.complete(v, false, r.as_ref().err().map(|e| e.to_string()));
    r
}

/// Writes `entries` as a tar into `tx`, in chunks.
fn write_tar(entries: Vec<Entry>, tx: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>) {
    struct ChunkWriter(tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>, Vec<u8>);
    impl std::io::Write for ChunkWriter {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.1.extend_from_slice(b);
            if self.1.len() >= 1 << 20 {
                self.flush()?;
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            if !self.1.is_empty() {
                let chunk = std::mem::take(&mut self.1);
                self.0.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::other("the client went away"))?;
            }
            Ok(())
        }
    }
    let mut w = berth_archive::writer::TarWriter::new(ChunkWriter(tx.clone(), Vec::new()));
    let r = (|| -> std::io::Result<()> {
        for e in entries {
            let Some(h) = header(&e) else { continue };
            match &e.source {
                Some(src) => w.append(&h, &mut std::fs::File::open(src)?)?,
                None => w.append(&h, &mut std::io::empty())?,
            }
        }
        let mut inner = w.finish()?;
        std::io::Write::flush(&mut inner)
    })();
    if let Err(e) = r {
        let _ = tx.blocking_send(Err(e));
    }
}
