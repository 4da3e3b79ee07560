//! Healthchecks: `--health-*` flags and an image's HEALTHCHECK, the status in `ps` and
//! inspect, the `health_status` events, timeouts and `--no-healthcheck`.

use std::time::{Duration, Instant};

use berth_integration::{Daemon, unique};

fn health(d: &Daemon, name: &str) -> String {
    d.berth(&["inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}", name])
        .ok()
        .trim()
        .to_string()
}

#[track_caller]
fn until_health(d: &Daemon, name: &str, want: &str) {
    let start = Instant::now();
    loop {
        let h = health(d, name);
        if h == want {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{name} never became {want} (is {h})");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_failing_check_turns_unhealthy_after_its_retries_and_healthy_when_it_passes() {
    let d = Daemon::with_busybox();
    let name = unique("hc");
    d.berth(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--health-cmd",
        "cat /tmp/ok",
        "--health-interval",
        "100ms",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    assert_eq!(health(&d, &name), "starting");
    until_health(&d, &name, "unhealthy");
    let streak = d.berth(&["inspect", "-f", "{{.State.Health.FailingStreak}}", &name]).ok();
    assert!(streak.trim().parse::<i64>().unwrap() >= 2, "{streak}");
    let ps = d.berth(&["ps", "--filter", "health=unhealthy", "--format", "{{.Names}} {{.Status}}"]).ok();
    assert!(ps.contains(&name) && ps.contains("(unhealthy)"), "{ps}");

    d.berth(&["exec", &name, "sh", "-c", "echo fine > /tmp/ok"]).ok();
    until_health(&d, &name, "healthy");
    let log = d.berth(&["inspect", "-f", "{{json .State.Health.Log}}", &name]).ok();
    assert!(log.contains("\"Output\":\"fine\\n\"") && log.contains("\"ExitCode\":0"), "{log}");
    let events = d
        .berth(&[
            "events",
            "--since",
            "1m",
            "--until",
            "0s",
            "--filter",
            &format!("container={name}"),
            "--format",
            "{{.Action}}",
        ])
        .ok();
    assert!(events.contains("health_status: unhealthy") && events.contains("health_status: healthy"), "{events}");
}

#[test]
fn an_images_healthcheck_is_honoured_and_no_healthcheck_turns_it_off() {
    let d = Daemon::with_busybox();
    let dir = d.dir.path().join(unique("ctx"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nHEALTHCHECK --interval=100ms --timeout=5s CMD true\nCMD [\"sleep\", \"1000\"]\n",
    )
    .unwrap();
    let img = unique("hcimg");
    d.berth(&["build", "--network", "none", "-t", &img, &dir.display().to_string()]).ok();
    let with = unique("with");
    d.berth(&["run", "-d", "--name", &with, "--network", "none", &img]).ok();
    until_health(&d, &with, "healthy");
    let without = unique("without");
    d.berth(&["run", "-d", "--name", &without, "--network", "none", "--no-healthcheck", &img]).ok();
    assert_eq!(health(&d, &without), "none");
    let ps = d.berth(&["ps", "--filter", &format!("name={without}"), "--format", "{{.Status}}"]).ok();
    assert!(!ps.contains("health"), "{ps}");
}

#[test]
fn a_probe_that_hangs_is_stopped_at_its_timeout() {
    let d = Daemon::with_busybox();
    let name = unique("slow");
    d.berth(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "100ms",
        "--health-timeout",
        "200ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    until_health(&d, &name, "unhealthy");
    let log = d.berth(&["inspect", "-f", "{{json .State.Health.Log}}", &name]).ok();
    assert!(log.contains("Health check exceeded timeout"), "{log}");
    // The hung probes were killed: after three timed-out probes, at most the one running
    // now is left beside the container's own process (a probe starts every 100 ms).
    let start = Instant::now();
    while d.berth(&["inspect", "-f", "{{.State.Health.FailingStreak}}", &name]).ok().trim().parse::<u32>().unwrap() < 3
    {
        assert!(start.elapsed() < Duration::from_secs(30), "no three timed-out probes");
        std::thread::sleep(Duration::from_millis(20));
    }
    let top = d.berth(&["top", &name]).ok();
    assert!(top.matches("sleep 30").count() <= 1, "{top}");
}
