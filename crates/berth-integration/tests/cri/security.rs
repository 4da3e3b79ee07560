//! Security contexts: what a pod spec asks of a container is what runs, seen from inside it
//! (`id`, /proc/self/status, a masked or read-only path), each beside a control without the
//! setting; what berth cannot apply is refused, and nothing is left behind.

use berth_cri::proto::*;

use crate::{Cri, container, pod, setup};

/// The container config with its security context changed by `f`.
fn secured(mut c: ContainerConfig, f: impl FnOnce(&mut LinuxContainerSecurityContext)) -> ContainerConfig {
    let linux = c.linux.get_or_insert_with(Default::default);
    f(linux.security_context.get_or_insert_with(Default::default));
    c
}

/// The pod config with its security context changed by `f`.
fn secured_pod(mut p: PodSandboxConfig, f: impl FnOnce(&mut LinuxPodSandboxConfig)) -> PodSandboxConfig {
    f(p.linux.get_or_insert_with(Default::default));
    p
}

fn profile(t: security_profile::ProfileType, localhost_ref: &str) -> Option<SecurityProfile> {
    Some(SecurityProfile { profile_type: t as i32, localhost_ref: localhost_ref.into() })
}

/// A command's stdout, trimmed; the command must succeed.
async fn sh(c: &mut Cri, id: &str, script: &str) -> String {
    let r = c.exec(id, &["sh", "-c", script], 30).await.unwrap();
    assert_eq!(r.exit_code, 0, "{script}: {}", String::from_utf8_lossy(&r.stderr));
    String::from_utf8_lossy(&r.stdout).trim().to_string()
}

/// The exit code of a command.
async fn code(c: &mut Cri, id: &str, script: &str) -> i32 {
    c.exec(id, &["sh", "-c", script], 30).await.unwrap().exit_code
}

/// A field of /proc/self/status of a process the command starts in the container.
async fn status_field(c: &mut Cri, id: &str, key: &str) -> String {
    sh(c, id, &format!("grep '^{key}:' /proc/self/status | cut -f2")).await
}

async fn no_containers(c: &mut Cri) -> Vec<Container> {
    c.rt.list_containers(ListContainersRequest::default()).await.unwrap().into_inner().containers
}

#[tokio::test]
async fn a_containers_user_groups_no_new_privs_and_paths_are_applied() {
    let (_d, mut c, logs) = setup().await;
    let mut cfg = pod("sec", &logs);
    cfg.linux = Some(LinuxPodSandboxConfig {
        security_context: Some(LinuxSandboxSecurityContext { supplemental_groups: vec![5000], ..Default::default() }),
        ..Default::default()
    });
    let p = c.run_pod(cfg.clone()).await;
    let locked = secured(container("locked", "sleep 1000"), |s| {
        s.run_as_user = Some(Int64Value { value: 1000 });
        s.run_as_group = Some(Int64Value { value: 3000 });
        s.supplemental_groups = vec![4000, 5000];
        s.no_new_privs = true;
        s.seccomp = profile(security_profile::ProfileType::RuntimeDefault, "");
        s.masked_paths = vec!["/proc/cpuinfo".into()];
        s.readonly_paths = vec!["/tmp".into()];
    });
    let locked = c.run(&p, &cfg, locked).await;
    let control = c.run(&p, &cfg, container("control", "sleep 1000")).await;

    assert_eq!(sh(&mut c, &locked, "id -u; id -g; id -G").await, "1000\n3000\n3000 4000 5000");
    assert_eq!(sh(&mut c, &control, "id -u; id -g").await, "0\n0");
    assert_eq!(status_field(&mut c, &locked, "NoNewPrivs").await, "1");
    assert_eq!(status_field(&mut c, &control, "NoNewPrivs").await, "0");
    assert_eq!(status_field(&mut c, &locked, "Seccomp").await, "2");
    // The masked path reads empty; in the control it has the CPUs.
    assert_eq!(sh(&mut c, &locked, "wc -c < /proc/cpuinfo").await, "0");
    assert_ne!(sh(&mut c, &control, "wc -c < /proc/cpuinfo").await, "0");
    // The read-only path is read-only even for root's files; the rest of the rootfs is not.
    let root =
        c.run(&p, &cfg, secured(container("root", "sleep 1000"), |s| s.readonly_paths = vec!["/tmp".into()])).await;
    assert_ne!(code(&mut c, &root, "touch /tmp/x").await, 0);
    assert_eq!(code(&mut c, &root, "touch /x").await, 0);
    assert_eq!(code(&mut c, &control, "touch /tmp/x").await, 0);
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn a_readonly_rootfs_and_an_unconfined_seccomp_profile_are_applied() {
    let (_d, mut c, logs) = setup().await;
    let cfg = pod("ro", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let ro = c.run(&p, &cfg, secured(container("ro", "sleep 1000"), |s| s.readonly_rootfs = true)).await;
    let unconfined = secured(container("unconfined", "sleep 1000"), |s| {
        s.seccomp = profile(security_profile::ProfileType::Unconfined, "");
    });
    let unconfined = c.run(&p, &cfg, unconfined).await;
    let old_form = secured(container("old", "sleep 1000"), |s| {
        #[allow(deprecated)]
        {
            s.seccomp_profile_path = "unconfined".into();
        }
    });
    let old_form = c.run(&p, &cfg, old_form).await;
    assert_ne!(code(&mut c, &ro, "touch /x").await, 0);
    assert_eq!(code(&mut c, &unconfined, "touch /x").await, 0);
    assert_eq!(status_field(&mut c, &unconfined, "Seccomp").await, "0");
    assert_eq!(status_field(&mut c, &old_form, "Seccomp").await, "0");
    // Control: nothing named is berth's default profile.
    assert_eq!(status_field(&mut c, &ro, "Seccomp").await, "2");
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn a_localhost_seccomp_profile_is_applied_or_refused_when_unusable() {
    let (d, mut c, logs) = setup().await;
    let cfg = pod("seccomp", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let path = d.dir.path().join("no-mkdir.json");
    std::fs::write(
        &path,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let path = path.display().to_string();
    let new_form = secured(container("new", "sleep 1000"), |s| {
        s.seccomp = profile(security_profile::ProfileType::Localhost, &path);
    });
    let new_form = c.run(&p, &cfg, new_form).await;
    let old_form = secured(container("old", "sleep 1000"), |s| {
        #[allow(deprecated)]
        {
            s.seccomp_profile_path = format!("localhost/{path}");
        }
    });
    let old_form = c.run(&p, &cfg, old_form).await;
    for id in [&new_form, &old_form] {
        let r = c.exec(id, &["mkdir", "/d"], 30).await.unwrap();
        assert_ne!(r.exit_code, 0, "mkdir was let through");
        assert!(String::from_utf8_lossy(&r.stderr).contains("not permitted"), "{r:?}");
        assert_eq!(code(&mut c, id, "touch /f").await, 0);
    }
    let control = c.run(&p, &cfg, container("control", "sleep 1000")).await;
    assert_eq!(code(&mut c, &control, "mkdir /d").await, 0);

    let bad = d.dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let before = no_containers(&mut c).await.len();
    for (name, r) in [("missing", "/nonexistent/profile.json".to_string()), ("bad", bad.display().to_string())] {
        let cc =
            secured(container(name, "true"), |s| s.seccomp = profile(security_profile::ProfileType::Localhost, &r));
        let e = c.create(&p, cfg.clone(), cc).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(&r), "{e:?}");
    }
    assert_eq!(no_containers(&mut c).await.len(), before, "a refused container was left behind");
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn settings_berth_cannot_apply_are_refused_and_nothing_is_made() {
    let (_d, mut c, logs) = setup().await;
    let cfg = pod("refuse", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let apparmor = profile(security_profile::ProfileType::Localhost, "my-profile");
    let cases: Vec<(&str, ContainerConfig, tonic::Code)> = vec![
        (
            "group-without-user",
            secured(container("a", "true"), |s| s.run_as_group = Some(Int64Value { value: 1000 })),
            tonic::Code::InvalidArgument,
        ),
        (
            "privileged-in-unprivileged-pod",
            secured(container("b", "true"), |s| s.privileged = true),
            tonic::Code::InvalidArgument,
        ),
        ("apparmor-localhost", secured(container("c", "true"), |s| s.apparmor = apparmor), tonic::Code::Unimplemented),
        (
            "ambient-capabilities",
            secured(container("d", "true"), |s| {
                s.capabilities =
                    Some(Capability { add_ambient_capabilities: vec!["NET_RAW".into()], ..Default::default() })
            }),
            tonic::Code::Unimplemented,
        ),
        (
            "strict-groups",
            secured(container("e", "true"), |s| s.supplemental_groups_policy = SupplementalGroupsPolicy::Strict as i32),
            tonic::Code::Unimplemented,
        ),
        (
            "hugepages",
            {
                let mut cc = container("f", "true");
                cc.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
                    hugepage_limits: vec![HugepageLimit { page_size: "2MB".into(), limit: 2 << 20 }],
                    ..Default::default()
                });
                cc
            },
            tonic::Code::Unimplemented,
        ),
        (
            "log-path-up",
            ContainerConfig { log_path: "../../escape.log".into(), ..container("g", "true") },
            tonic::Code::InvalidArgument,
        ),
        (
            "log-path-absolute",
            ContainerConfig { log_path: "/tmp/abs.log".into(), ..container("h", "true") },
            tonic::Code::InvalidArgument,
        ),
    ];
    for (what, cc, want) in cases {
        let e = c.create(&p, cfg.clone(), cc).await.unwrap_err();
        assert_eq!(e.code(), want, "{what}: {e:?}");
    }
    assert!(no_containers(&mut c).await.is_empty(), "a refused container was left behind");
    // Control: unset hugepage limits (kubelet sends one of 0 per page size) are fine.
    let mut cc = container("zero-hugepages", "true");
    cc.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
        hugepage_limits: vec![HugepageLimit { page_size: "2MB".into(), limit: 0 }],
        ..Default::default()
    });
    c.create(&p, cfg.clone(), cc).await.unwrap();
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn a_privileged_container_runs_in_a_privileged_pod() {
    let (_d, mut c, logs) = setup().await;
    let cfg = secured_pod(pod("priv", &logs), |l| {
        l.security_context = Some(LinuxSandboxSecurityContext { privileged: true, ..Default::default() })
    });
    let p = c.run_pod(cfg.clone()).await;
    let id = c.run(&p, &cfg, secured(container("priv", "sleep 1000"), |s| s.privileged = true)).await;
    assert_eq!(status_field(&mut c, &id, "Seccomp").await, "0");
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn pod_sysctls_are_applied_and_a_host_wide_one_is_refused() {
    let (_d, mut c, logs) = setup().await;
    let cfg = secured_pod(pod("sysctl", &logs), |l| {
        l.sysctls = [("kernel.shm_rmid_forced".to_string(), "1".to_string())].into();
    });
    let p = c.run_pod(cfg.clone()).await;
    let id = c.run(&p, &cfg, container("main", "sleep 1000")).await;
    assert_eq!(sh(&mut c, &id, "cat /proc/sys/kernel/shm_rmid_forced").await, "1");
    // Control: a pod without it keeps the kernel's default.
    let plain = pod("plain", &logs);
    let q = c.run_pod(plain.clone()).await;
    let other = c.run(&q, &plain, container("main", "sleep 1000")).await;
    assert_eq!(sh(&mut c, &other, "cat /proc/sys/kernel/shm_rmid_forced").await, "0");
    c.remove_pod(&p).await;
    c.remove_pod(&q).await;

    for (name, sysctl) in [("hostwide", "kernel.panic"), ("hostnet", "net.ipv4.ip_forward")] {
        let mut bad = secured_pod(pod(name, &logs), |l| l.sysctls = [(sysctl.to_string(), "1".to_string())].into());
        if name == "hostnet" {
            bad = crate::host_network(bad);
            bad.linux.as_mut().unwrap().sysctls = [(sysctl.to_string(), "1".to_string())].into();
        }
        let e = c.rt.run_pod_sandbox(RunPodSandboxRequest { config: Some(bad), ..Default::default() }).await;
        let e = e.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(sysctl), "{e:?}");
    }
    let pods = c.rt.list_pod_sandbox(ListPodSandboxRequest::default()).await.unwrap().into_inner().items;
    assert!(pods.is_empty(), "a refused pod was left behind: {pods:?}");
}

#[tokio::test]
async fn the_pods_user_runs_the_holder_and_devices_and_cpusets_reach_the_container() {
    let (_d, mut c, logs) = setup().await;
    let cfg = secured_pod(pod("holder", &logs), |l| {
        l.security_context = Some(LinuxSandboxSecurityContext {
            run_as_user: Some(Int64Value { value: 65535 }),
            run_as_group: Some(Int64Value { value: 65535 }),
            namespace_options: Some(NamespaceOption { pid: NamespaceMode::Pod as i32, ..Default::default() }),
            ..Default::default()
        })
    });
    let p = c.run_pod(cfg.clone()).await;
    let mut cc = secured(container("main", "sleep 1000"), |s| {
        s.namespace_options = Some(NamespaceOption { pid: NamespaceMode::Pod as i32, ..Default::default() })
    });
    cc.devices =
        vec![Device { container_path: "/dev/myzero".into(), host_path: "/dev/zero".into(), permissions: "r".into() }];
    cc.linux.as_mut().unwrap().resources =
        Some(LinuxContainerResources { cpuset_cpus: "0".into(), ..Default::default() });
    let id = c.run(&p, &cfg, cc).await;
    // The holder is PID 1 of the pod's shared PID namespace.
    assert_eq!(sh(&mut c, &id, "grep -E '^(Uid|Gid):' /proc/1/status | cut -f2").await, "65535\n65535");
    assert_eq!(sh(&mut c, &id, "head -c 3 /dev/myzero | od -An -tx1").await, "00 00 00");
    assert_eq!(status_field(&mut c, &id, "Cpus_allowed_list").await, "0");
    // Control: a container without them.
    let other = c.run(&p, &cfg, container("other", "sleep 1000")).await;
    assert_ne!(code(&mut c, &other, "test -e /dev/myzero").await, 0);
    let cpus = std::fs::read_to_string("/sys/fs/cgroup/cpuset/cpuset.cpus").unwrap_or_default();
    if cpus.trim() != "0" {
        assert_ne!(status_field(&mut c, &other, "Cpus_allowed_list").await, "0");
    }
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn a_bidirectional_mount_carries_a_mount_made_in_the_container_to_the_host() {
    let (d, mut c, logs) = setup().await;
    // kubelet's case: a CSI node plugin mounts volumes for the node under a shared host path.
    let host = berth_integration::HostMount::new(&d.dir.path().join("plugins"), "shared");
    std::fs::create_dir(host.0.join("vol")).unwrap();
    std::fs::create_dir(host.0.join("kept")).unwrap();
    let cfg = secured_pod(pod("csi", &logs), |l| {
        l.security_context = Some(LinuxSandboxSecurityContext { privileged: true, ..Default::default() })
    });
    let p = c.run_pod(cfg.clone()).await;
    let mut cc = secured(container("plugin", "sleep 1000"), |s| s.privileged = true);
    let mount = |path: &str, propagation: MountPropagation| Mount {
        container_path: path.into(),
        host_path: host.path().into(),
        propagation: propagation as i32,
        ..Default::default()
    };
    cc.mounts = vec![
        mount("/both", MountPropagation::PropagationBidirectional),
        mount("/own", MountPropagation::PropagationPrivate),
    ];
    let id = c.run(&p, &cfg, cc).await;
    sh(&mut c, &id, "mount -t tmpfs -o size=1m csi /both/vol && echo published > /both/vol/f").await;
    assert_eq!(std::fs::read_to_string(host.0.join("vol/f")).unwrap(), "published\n");
    // Control: under the private mount of the same path, the container's mount stays its own.
    assert_eq!(
        sh(&mut c, &id, "mount -t tmpfs -o size=1m own /own/kept && echo mine > /own/kept/f && cat /own/kept/f").await,
        "mine"
    );
    assert!(!host.0.join("kept/f").exists());
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn a_bidirectional_mount_of_a_private_host_path_is_refused_naming_it() {
    let (d, mut c, logs) = setup().await;
    let host = berth_integration::HostMount::new(&d.dir.path().join("private"), "private");
    let cfg = pod("noshare", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let mut cc = container("plugin", "sleep 1000");
    cc.mounts = vec![Mount {
        container_path: "/both".into(),
        host_path: host.path().into(),
        propagation: MountPropagation::PropagationBidirectional as i32,
        ..Default::default()
    }];
    let id = c.create(&p, cfg.clone(), cc).await.unwrap();
    let e = c.rt.start_container(StartContainerRequest { container_id: id }).await.unwrap_err();
    let want = format!("path {0} is mounted on {0} but it is not a shared mount", host.path());
    assert!(e.message().contains(&want), "{e:?}");
    c.remove_pod(&p).await;
}
