//! The ImageService: the Docker API's image store, seen through the CRI.

use berth_cri::proto::*;
use berth_integration::{Daemon, Registry, unique};

use crate::connect;

fn spec(name: &str) -> Option<ImageSpec> {
    Some(ImageSpec { image: name.into(), ..Default::default() })
}

#[tokio::test]
async fn images_loaded_through_the_docker_api_are_listed_inspected_and_removed() {
    let d = Daemon::with_busybox();
    let mut c = connect(&d).await;
    let extra = unique("extra");
    d.berth(&["tag", "busybox", &extra]).ok();
    let id = d.berth(&["image", "inspect", "-f", "{{.Id}}", "busybox"]).ok().trim().to_string();

    let all = c.img.list_images(ListImagesRequest::default()).await.unwrap().into_inner().images;
    let bb = all.iter().find(|i| i.id == id).expect("busybox is listed");
    assert!(bb.repo_tags.contains(&"docker.io/library/busybox:latest".to_string()), "{:?}", bb.repo_tags);
    assert!(bb.repo_tags.contains(&format!("docker.io/library/{extra}:latest")), "{:?}", bb.repo_tags);
    assert!(bb.size > 0);
    assert_eq!(bb.uid, None, "busybox's config names no user");

    let st =
        c.img.image_status(ImageStatusRequest { image: spec("busybox"), verbose: true }).await.unwrap().into_inner();
    assert_eq!(st.image.as_ref().map(|i| i.id.as_str()), Some(id.as_str()));
    let info: serde_json::Value = serde_json::from_str(&st.info["info"]).unwrap();
    assert!(info["imageSpec"]["rootfs"]["diff_ids"].as_array().is_some_and(|l| !l.is_empty()), "{info}");
    // By ID too; a missing image is no error, just no image.
    let st = c.img.image_status(ImageStatusRequest { image: spec(&id), verbose: false }).await.unwrap().into_inner();
    assert!(st.image.is_some() && st.info.is_empty());
    let st =
        c.img.image_status(ImageStatusRequest { image: spec("nothere:1"), verbose: false }).await.unwrap().into_inner();
    assert_eq!(st.image, None);
    let one = c.img.list_images(ListImagesRequest { filter: Some(ImageFilter { image: spec(&extra) }) }).await;
    assert_eq!(one.unwrap().into_inner().images.len(), 1);

    let fs = c.img.image_fs_info(ImageFsInfoRequest {}).await.unwrap().into_inner();
    let u = &fs.image_filesystems[0];
    assert!(u.fs_id.as_ref().unwrap().mountpoint.starts_with(&d.data_root().display().to_string()));
    assert!(u.used_bytes.unwrap().value > 0 && u.inodes_used.unwrap().value > 0);

    // RemoveImage takes the image with all its names; the Docker API sees it gone.
    c.img.remove_image(RemoveImageRequest { image: spec(&extra) }).await.unwrap();
    assert!(d.berth(&["image", "inspect", "busybox"]).code != 0);
    assert!(d.berth(&["image", "inspect", &extra]).code != 0);
    // Removing what is not there succeeds, as the CRI asks.
    c.img.remove_image(RemoveImageRequest { image: spec(&extra) }).await.unwrap();
    let e = c.img.remove_image(RemoveImageRequest { image: spec("") }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn pull_from_a_local_registry_is_seen_by_the_docker_api() {
    let d = Daemon::with_busybox();
    let reg = Registry::open();
    let addr = reg.addr.clone();
    let name = format!("{addr}/{}:v1", unique("cri"));
    d.berth(&["tag", "busybox", &name]).ok();
    d.berth(&["push", &name]).ok();
    d.berth(&["rmi", &name]).ok();

    let mut c = connect(&d).await;
    let r = c.img.pull_image(PullImageRequest { image: spec(&name), ..Default::default() }).await.unwrap().into_inner();
    let id = d.berth(&["image", "inspect", "-f", "{{.Id}}", &name]).ok().trim().to_string();
    assert_eq!(r.image_ref, id, "PullImage answers the image's ID, which the Docker API shows");
    let e = c
        .img
        .pull_image(PullImageRequest { image: spec(&format!("{addr}/nothere:v1")), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
}
