//! Garbage collection: orphans go, referenced and young blobs stay, while serving.

use crate::common::*;
use berth_registry::garbage_collect;
use berth_registry::gc::{GcOptions, garbage_collect_with};
use berth_registry::names::Digest;
use http::{Method, StatusCode};
use std::path::Path;
use std::time::{Duration, SystemTime};

fn blob_path(root: &Path, d: &str) -> std::path::PathBuf {
    let hex = d.strip_prefix("sha256:").unwrap();
    root.join("blobs/sha256").join(&hex[..2]).join(hex).join("data")
}

fn age(path: &Path, by: Duration) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - by).unwrap();
}

const TWO_HOURS: Duration = Duration::from_secs(7200);

#[tokio::test]
async fn orphans_are_collected_but_not_referenced_or_young_blobs() {
    let s = Server::start().await;
    let c = s.client();
    let (md, cfg, layer) = c.push_image("app", "v1", b"referenced layer").await;
    let old_orphan = c.push_blob("app", b"old orphan").await;
    let young_orphan = c.push_blob("app", b"in-flight push").await;
    for d in [&old_orphan, &layer, &cfg, &md] {
        age(&blob_path(&s.root, d), TWO_HOURS);
    }

    let root = s.root.clone();
    let dry = tokio::task::spawn_blocking(move || garbage_collect(&root, true)).await.unwrap().unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.blobs_deleted, vec![Digest::parse(&old_orphan).unwrap()]);
    assert!(blob_path(&s.root, &old_orphan).exists(), "a dry run deletes nothing");

    let root = s.root.clone();
    let report = tokio::task::spawn_blocking(move || garbage_collect(&root, false)).await.unwrap().unwrap();
    assert_eq!(report.blobs_deleted, vec![Digest::parse(&old_orphan).unwrap()]);
    assert_eq!(report.bytes_freed, 10);
    assert_eq!(report.blobs_in_grace, vec![Digest::parse(&young_orphan).unwrap()]);
    assert_eq!(report.blobs_marked, 3);
    assert_eq!(report.layer_links_removed.len(), 1);
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    assert!(!blob_path(&s.root, &old_orphan).exists());
    assert_eq!(c.get(&format!("/v2/app/blobs/{old_orphan}")).await.code(), "BLOB_UNKNOWN");
    assert_eq!(c.get(&format!("/v2/app/blobs/{young_orphan}")).await.status, StatusCode::OK);
    // The image still pulls, whole.
    assert_eq!(c.get("/v2/app/manifests/v1").await.status, StatusCode::OK);
    assert_eq!(&c.get(&format!("/v2/app/blobs/{layer}")).await.body[..], b"referenced layer");
    // The young orphan's push can still complete.
    let m = image_manifest(&cfg, 0, &young_orphan, 14);
    assert_eq!(c.put_manifest("app", "v2", OCI_MANIFEST, &m).await.status, StatusCode::CREATED);
    s.stop().await;
}

#[tokio::test]
async fn reuploading_an_old_orphan_refreshes_it() {
    let s = Server::start().await;
    let c = s.client();
    let d = c.push_blob("app", b"comes back").await;
    age(&blob_path(&s.root, &d), TWO_HOURS);
    c.push_blob("other", b"comes back").await; // same content, pushed again
    let report = garbage_collect(&s.root, false).unwrap();
    assert!(report.blobs_deleted.is_empty());
    assert_eq!(c.get(&format!("/v2/other/blobs/{d}")).await.status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn delete_untagged_removes_unreachable_manifests() {
    let s = Server::start().await;
    let c = s.client();
    let (kept, _, kept_layer) = c.push_image("app", "stay", b"kept").await;
    let (gone, _, gone_layer) = c.push_image("app", "go", b"dropped").await;
    // A referrer of the tagged image is kept with it.
    let empty = c.push_blob("app", b"{}").await;
    let sig = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x-sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": kept, "size": 1}
    });
    let sig_digest = sha256(&serde_json::to_vec(&sig).unwrap());
    c.put_manifest("app", &sig_digest, OCI_MANIFEST, &sig).await;
    c.send(Method::DELETE, "/v2/app/manifests/go", &[], "").await;
    for entry in walk(&s.root) {
        age(&entry, TWO_HOURS);
    }
    let opts = GcOptions { delete_untagged: true, ..GcOptions::default() };
    let report = garbage_collect_with(&s.root, &opts).unwrap();
    assert_eq!(report.manifests_deleted, vec![("app".to_string(), Digest::parse(&gone).unwrap())]);
    assert!(report.blobs_deleted.contains(&Digest::parse(&gone_layer).unwrap()));
    assert!(!report.blobs_deleted.contains(&Digest::parse(&kept_layer).unwrap()));
    assert_eq!(c.get(&format!("/v2/app/manifests/{gone}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get(&format!("/v2/app/manifests/{kept}")).await.status, StatusCode::OK);
    assert_eq!(c.get(&format!("/v2/app/manifests/{sig_digest}")).await.status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn stale_upload_sessions_are_purged() {
    let s = Server::start().await;
    let c = s.client();
    let stale = c.send(Method::POST, "/v2/app/blobs/uploads/", &[], "").await.header("location").unwrap().to_string();
    c.send(Method::PATCH, &stale, &[], "abandoned").await;
    let fresh = c.send(Method::POST, "/v2/app/blobs/uploads/", &[], "").await.header("location").unwrap().to_string();
    let id = stale.rsplit('/').next().unwrap();
    age(&s.root.join("repositories/app/_uploads").join(id).join("data"), Duration::from_secs(8 * 24 * 3600));
    let report = garbage_collect(&s.root, false).unwrap();
    assert_eq!(report.uploads_purged, vec![("app".to_string(), id.to_string())]);
    assert_eq!(c.get(&stale).await.code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(c.get(&fresh).await.status, StatusCode::NO_CONTENT);
    s.stop().await;
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
