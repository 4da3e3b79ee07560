//! docker compose v2 building a project of three services from local Dockerfiles, through
//! buildx and through the classic API.

use super::*;

fn project(d: &Daemon) -> (PathBuf, String) {
    let mut list = vec![(
        "compose.yaml".to_string(),
        "services:\n".to_string()
            + &["a", "b", "c"]
                .iter()
                .map(|s| format!("  {s}:\n    build: ./{s}\n    network_mode: none\n"))
                .collect::<String>(),
    )];
    for s in ["a", "b", "c"] {
        list.push((format!("{s}/Dockerfile"), "FROM busybox\nCOPY word /word\nCMD [\"cat\", \"/word\"]\n".to_string()));
        list.push((format!("{s}/word"), format!("service {s}\n")));
    }
    let refs: Vec<(&str, &str)> = list.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    (files(d, &refs), berth_integration::unique("proj"))
}

#[test]
fn compose_builds_three_services_and_up_runs_them() {
    let d = Daemon::with_busybox();
    let (dir, name) = project(&d);
    docker(&d, &dir, &["compose", "-p", &name, "build"]).ok();
    for s in ["a", "b", "c"] {
        let img = format!("{name}-{s}");
        assert_eq!(d.docker(&["run", "--rm", "--network", "none", &img]).ok(), format!("service {s}\n"));
    }
    // Change one service: up --build rebuilds it and runs all three.
    std::fs::write(dir.join("b/word"), "service b, changed\n").unwrap();
    docker(&d, &dir, &["compose", "-p", &name, "up", "--build"]).ok();
    let logs = docker(&d, &dir, &["compose", "-p", &name, "logs", "--no-log-prefix", "b"]).ok();
    assert!(logs.stdout.contains("service b, changed"), "{}", logs.stdout);
    docker(&d, &dir, &["compose", "-p", &name, "down", "--rmi", "all"]).ok();
}

#[test]
fn compose_classic_build_accepts_null_parameters() {
    let d = Daemon::with_busybox();
    let (dir, name) = project(&d);
    docker_env(&d, &dir, &["compose", "-p", &name, "build"], &[("DOCKER_BUILDKIT", "0")]).ok();
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", &format!("{name}-c")]).ok(), "service c\n");
    docker(&d, &dir, &["compose", "-p", &name, "down", "--rmi", "all"]).ok();
}
