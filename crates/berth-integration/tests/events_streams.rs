//! Events as dockerd logs them, and attach's stdin (issue 16, points 14 and 21).

use berth_integration::{Daemon, unique};

/// Closing an attach client's stdin closed the container's stdin even without StdinOnce
/// (`run -d -i`): the next client could not write. Now, as in Docker, the attach ends and
/// the container's stdin stays open.
#[test]
fn closing_attach_stdin_keeps_the_container_stdin_without_stdin_once() {
    let d = Daemon::with_busybox();
    let name = unique("stdin");
    d.docker(&[
        "run",
        "-d",
        "-i",
        "--name",
        &name,
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "while read l; do echo got $l; done; echo stdin-closed",
    ])
    .ok();
    assert_eq!(d.docker(&["inspect", "-f", "{{.Config.StdinOnce}}", &name]).ok().trim(), "false");
    let out = d.docker_py(include_str!("streams/stdin_stays_open.py"), &[&name]).ok();
    assert_eq!(out, "first: True False\nrunning after the first attach: True\nsecond: True\n");
    d.docker(&["rm", "-f", &name]).ok();
}

/// One event line: type, action, actor ID and attributes.
struct Ev {
    kind: String,
    action: String,
    id: String,
    attrs: serde_json::Map<String, serde_json::Value>,
}

impl Ev {
    fn attr(&self, k: &str) -> &str {
        self.attrs.get(k).and_then(|v| v.as_str()).unwrap_or("")
    }
}

/// `docker events` for what the CLI and API do to a container, its volumes, networks and
/// images, as dockerd logs them: attach, top, resize, archive-path, extract-to-dir, network
/// connect/disconnect naming the container (at start too), kill then die then stop, the
/// anonymous volume's create/mount/unmount/destroy, and untag and load with the image ID.
#[test]
fn events_as_dockerd_logs_them() {
    let d = Daemon::with_busybox();
    let (name, net, net2, tag) = (unique("ev"), unique("evnet"), unique("evnet2"), format!("{}:v1", unique("evimg")));
    let since = d.docker(&["version", "-f", "{{.Server.Os}}"]).ok();
    assert_eq!(since.trim(), "linux");
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 1;
    d.docker(&["network", "create", &net]).ok();
    d.docker(&["network", "create", &net2]).ok();
    d.docker(&["run", "-d", "-t", "--name", &name, "--network", &net, "-v", "/data", "busybox", "sleep", "1000"]).ok();
    let id = d.docker(&["inspect", "-f", "{{.Id}}", &name]).ok().trim().to_string();
    let vol = d.docker(&["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", &name]).ok().trim().to_string();
    d.docker(&["top", &name]).ok();
    assert_eq!(d.api("POST", &format!("/containers/{name}/resize?h=30&w=100"), b"").0, 200);
    assert_eq!(d.api("POST", &format!("/containers/{name}/attach?logs=1&stdout=1"), b"").0, 200);
    let dir = tempfile::tempdir().unwrap();
    d.docker(&["cp", &format!("{name}:/etc/hostname"), &dir.path().display().to_string()]).ok();
    d.docker(&["cp", &dir.path().join("hostname").display().to_string(), &format!("{name}:/tmp/")]).ok();
    d.docker(&["network", "connect", &net2, &name]).ok();
    d.docker(&["network", "disconnect", &net2, &name]).ok();
    d.docker(&["stop", "-t", "1", &name]).ok();
    d.docker(&["rm", "-v", &name]).ok();
    let image_id = d.docker(&["image", "inspect", "-f", "{{.Id}}", "busybox"]).ok().trim().to_string();
    d.docker(&["tag", "busybox", &tag]).ok();
    let tar = dir.path().join("img.tar");
    d.docker(&["save", "-o", &tar.display().to_string(), &tag]).ok();
    d.docker(&["rmi", &tag]).ok();
    d.docker(&["load", "-i", &tar.display().to_string()]).ok();
    d.docker(&["rmi", &tag]).ok();
    d.docker(&["network", "rm", &net, &net2]).ok();
    let t1 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1;
    let out = d
        .docker(&[
            "events",
            "--since",
            &t0.to_string(),
            "--until",
            &t1.to_string(),
            "--format",
            "{{json .Type}} {{json .Action}} {{json .Actor.ID}} {{json .Actor.Attributes}}",
        ])
        .ok();
    let evs: Vec<Ev> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(&format!("[{}]", l.replace("} ", "}, ").replace("\" ", "\", ")))
                    .unwrap_or_else(|e| panic!("{l}: {e}"));
            Ev {
                kind: v[0].as_str().unwrap().to_string(),
                action: v[1].as_str().unwrap().to_string(),
                id: v[2].as_str().unwrap().to_string(),
                attrs: v[3].as_object().cloned().unwrap_or_default(),
            }
        })
        .collect();
    let find = |kind: &str, action: &str, actor: &str| {
        evs.iter().position(|e| e.kind == kind && e.action == action && e.id == actor)
    };
    let has = |kind: &str, action: &str, actor: &str| find(kind, action, actor).is_some();
    for a in ["attach", "top", "archive-path", "extract-to-dir"] {
        assert!(has("container", a, &id), "container {a} in\n{out}");
    }
    let resize = &evs[find("container", "resize", &id).expect(&out)];
    assert_eq!((resize.attr("height"), resize.attr("width")), ("30", "100"));
    // docker stop: kill (SIGTERM), die, stop, in that order.
    let kill = find("container", "kill", &id).expect(&out);
    assert_eq!(evs[kill].attr("signal"), "15");
    let (die, stop) = (find("container", "die", &id).expect(&out), find("container", "stop", &id).expect(&out));
    assert!(kill < die && die < stop, "kill, die, stop:\n{out}");
    // Networks: connect at start and by `network connect`, each naming the container.
    let net_id = |n: &str| -> String {
        evs.iter().find(|e| e.kind == "network" && e.action == "create" && e.attr("name") == n).expect(&out).id.clone()
    };
    for (n, actions) in [(&net, ["connect", "disconnect"]), (&net2, ["connect", "disconnect"])] {
        for a in actions {
            let e = evs
                .iter()
                .find(|e| e.kind == "network" && e.action == a && e.id == net_id(n))
                .unwrap_or_else(|| panic!("network {a} {n} in\n{out}"));
            assert_eq!(e.attr("container"), id, "network {a} {n}");
        }
    }
    // The anonymous volume, from create to destroy.
    let mut last = 0;
    for a in ["create", "mount", "unmount", "destroy"] {
        let i = find("volume", a, &vol).unwrap_or_else(|| panic!("volume {a} of {vol} in\n{out}"));
        assert!(i >= last, "volume {a} in order:\n{out}");
        last = i;
    }
    let mount = &evs[find("volume", "mount", &vol).unwrap()];
    assert_eq!((mount.attr("container"), mount.attr("destination")), (id.as_str(), "/data"));
    // Images: untag and load name the image by its ID.
    assert!(has("image", "untag", &image_id), "untag by image ID in\n{out}");
    let load = &evs[find("image", "load", &image_id).unwrap_or_else(|| panic!("load by image ID in\n{out}"))];
    assert_eq!(load.attr("name"), image_id);
}
