//! Version, Status, RuntimeConfig, and where the CRI socket is.

use berth_cri::proto::*;
use berth_integration::Daemon;

use crate::{connect, connect_to, socket};

#[tokio::test]
async fn version_status_and_runtime_config() {
    let d = Daemon::start();
    let mut c = connect(&d).await;
    let v = c.rt.version(VersionRequest { version: "v1".into() }).await.unwrap().into_inner();
    assert_eq!((v.runtime_name.as_str(), v.runtime_api_version.as_str()), ("berth", "v1"));
    assert!(!v.runtime_version.is_empty());
    let s = c.rt.status(StatusRequest { verbose: false }).await.unwrap().into_inner().status.unwrap();
    let cond = |t: &str| s.conditions.iter().find(|c| c.r#type == t).cloned().unwrap_or_else(|| panic!("no {t}"));
    assert!(cond("RuntimeReady").status);
    // NetworkReady follows the CNI config directory (tests/cri/cni.rs).
    assert!(s.conditions.iter().any(|c| c.r#type == "NetworkReady"));
    let rc = c.rt.runtime_config(RuntimeConfigRequest {}).await.unwrap().into_inner();
    assert_eq!(rc.linux.unwrap().cgroup_driver, CgroupDriver::Cgroupfs as i32);
    // What berth does not serve yet says so.
    let e = c.rt.update_runtime_config(UpdateRuntimeConfigRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented);
}

#[tokio::test]
async fn the_socket_is_where_the_flag_or_daemon_json_says() {
    let mut d = Daemon::start();
    // The default: cri.sock in the exec root (/run/berth/cri.sock for a default daemon).
    assert!(socket(&d).exists());
    let moved = d.dir.path().join("elsewhere.sock");
    d.set_config(&format!(r#""cri-socket": "{}""#, moved.display()));
    d.restart();
    assert!(!socket(&d).exists(), "the default socket is not made when another is configured");
    let mut c = connect_to(&moved).await;
    assert_eq!(c.rt.version(VersionRequest::default()).await.unwrap().into_inner().runtime_name, "berth");
    d.set_config(r#""cri-socket": """#);
    d.restart();
    assert!(!moved.exists() && !socket(&d).exists(), "an empty cri-socket turns the CRI off");
    assert!(d.berth(&["version"]).code == 0, "the Docker API is served all the same");

    let dir = tempfile::Builder::new().prefix("bt").tempdir_in("/tmp").unwrap();
    let flagged = dir.path().join("flag.sock");
    let d2 = Daemon::start_with(&["--cri-socket", &flagged.display().to_string()]);
    let mut c = connect_to(&flagged).await;
    assert_eq!(c.rt.version(VersionRequest::default()).await.unwrap().into_inner().runtime_name, "berth");
    assert!(!socket(&d2).exists());
}
