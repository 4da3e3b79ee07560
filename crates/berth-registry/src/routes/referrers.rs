//! `GET /v2/<name>/referrers/<digest>?artifactType=`: the manifests whose `subject` is
//! `<digest>`, as an OCI image index of descriptors (`mediaType`, `digest`, `size`,
//! `artifactType`, `annotations`). A subject nobody refers to, or that does not exist,
//! gives an empty index, as the spec asks. With `artifactType`, only matching descriptors
//! are listed and `OCI-Filters-Applied: artifactType` says so.

use crate::error::{ErrorCode, RegistryError, Result};
use crate::http_util::{self, Body};
use crate::manifest::{self, OCI_INDEX};
use crate::names::Digest;
use crate::router::Ctx;
use crate::{Registry, blocking};
use http::{Response, StatusCode, header};
use serde_json::{Value, json};

pub async fn list(reg: &Registry, ctx: &Ctx, name: &str, subject: &str) -> Result<Response<Body>> {
    let subject = Digest::parse(subject)?;
    let filter = ctx.query.get("artifactType").filter(|a| !a.is_empty()).map(str::to_string);
    let (s, n, f) = (reg.storage.clone(), name.to_string(), filter.clone());
    let descriptors = blocking(move || {
        if !s.repo_exists(&n) {
            return Err(RegistryError::with_detail(ErrorCode::NameUnknown, "repository name not known to registry", n));
        }
        let mut out = Vec::new();
        for d in s.referrers(&n, &subject)? {
            let Some(m) = s.get_manifest(&n, &d)? else { continue };
            let Ok(p) = manifest::parse(Some(&m.media_type), &m.bytes) else { continue };
            if f.as_ref().is_some_and(|f| p.artifact_type.as_ref() != Some(f)) {
                continue;
            }
            let mut desc = json!({ "mediaType": m.media_type, "digest": d.to_string(), "size": m.bytes.len() });
            if let Some(a) = p.artifact_type {
                desc["artifactType"] = Value::String(a);
            }
            if let Some(a) = p.annotations {
                desc["annotations"] = a;
            }
            out.push(desc);
        }
        Ok(out)
    })
    .await?;
    let mut resp = http_util::json(
        StatusCode::OK,
        &json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors }),
    );
    resp.headers_mut().insert(header::CONTENT_TYPE, OCI_INDEX.parse().expect("static"));
    if filter.is_some() {
        resp.headers_mut().insert("oci-filters-applied", "artifactType".parse().expect("static"));
    }
    Ok(resp)
}
