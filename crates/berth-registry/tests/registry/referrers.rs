//! The referrers API and the `subject` field.

use crate::common::*;
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn artifacts_with_a_subject_are_listed_as_referrers() {
    let s = Server::start().await;
    let c = s.client();
    let (subject, _, _) = c.push_image("app", "v1", b"layer").await;
    let subject_size = c.get("/v2/app/manifests/v1").await.body.len();
    let empty = c.push_blob("app", b"{}").await;
    let sig = c.push_blob("app", b"signature").await;
    let artifact = |kind: &str| {
        json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": kind,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": sig, "size": 9}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
            "annotations": {"org.example": kind}
        })
    };
    let a = artifact("application/vnd.example.sig");
    let r = c.put_manifest("app", &sha256(&serde_json::to_vec(&a).unwrap()), OCI_MANIFEST, &a).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.header("oci-subject"), Some(subject.as_str()));
    let sig_digest = r.header("docker-content-digest").unwrap().to_string();
    let b = artifact("application/vnd.example.sbom");
    c.put_manifest("app", &sha256(&serde_json::to_vec(&b).unwrap()), OCI_MANIFEST, &b).await;

    let r = c.get(&format!("/v2/app/referrers/{subject}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some(OCI_INDEX));
    let idx = r.json();
    assert_eq!(idx["mediaType"], json!(OCI_INDEX));
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 2);

    let r = c.get(&format!("/v2/app/referrers/{subject}?artifactType=application/vnd.example.sig")).await;
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    let m = &r.json()["manifests"];
    assert_eq!(m.as_array().unwrap().len(), 1);
    assert_eq!(m[0]["digest"], json!(sig_digest));
    assert_eq!(m[0]["artifactType"], json!("application/vnd.example.sig"));
    assert_eq!(m[0]["annotations"]["org.example"], json!("application/vnd.example.sig"));

    // Nothing refers to an unknown digest: an empty index, not an error.
    let r = c.get(&format!("/v2/app/referrers/{}", sha256(b"nothing"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["manifests"], json!([]));

    // Deleting the artifact removes it from the list.
    c.send(http::Method::DELETE, &format!("/v2/app/manifests/{sig_digest}"), &[], "").await;
    let r = c.get(&format!("/v2/app/referrers/{subject}")).await;
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 1);
    s.stop().await;
}
