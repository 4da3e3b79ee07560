//! berth's CLI keeps the build context in sync on the daemon (only changed files travel),
//! and COPY reuses a layer it already made for the same content. Checked by what a user
//! sees in the images, and at the protocol level by what the daemon asks for.

use std::path::{Path, PathBuf};

use berth_integration::{Daemon, Run};

fn context(d: &Daemon, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.dir.path().join(berth_integration::unique("ctx"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, content) in files {
        write(&dir, name, content);
    }
    dir
}

fn write(dir: &Path, name: &str, content: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn build(d: &Daemon, dir: &Path, tag: &str) -> Run {
    d.berth(&["build", "--network", "none", "-t", tag, &dir.display().to_string()])
}

/// Every file under /ctx in `image`, with its content.
fn files(d: &Daemon, image: &str) -> Vec<String> {
    let out = d.berth(&["run", "--rm", "--network", "none", image, "sh", "-c", "cd /ctx && find . -type f -o -type l | sort | while read f; do if [ -L \"$f\" ]; then echo \"$f -> $(readlink \"$f\")\"; else echo \"$f: $(head -n1 \"$f\")\"; fi; done"]).ok();
    out.lines().map(String::from).collect()
}

fn entry(path: &str, kind: char, size: u64, mtime: i64) -> serde_json::Value {
    serde_json::json!({"p": path, "k": kind.to_string(), "m": if kind == 'd' { 0o755 } else { 0o644 }, "s": size, "t": mtime})
}

#[test]
fn rebuilds_see_every_change_to_the_context() {
    let d = Daemon::with_busybox();
    let dir = context(
        &d,
        &[
            ("Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
            ("a.txt", "a1"),
            ("gone.txt", "bye"),
            ("sub/b.txt", "b1"),
            ("x", "file"),
        ],
    );
    build(&d, &dir, "sync:1").ok();
    assert_eq!(
        files(&d, "sync:1"),
        ["./Dockerfile: FROM busybox", "./a.txt: a1", "./gone.txt: bye", "./sub/b.txt: b1", "./x: file"]
    );

    // An edit that keeps the size, a removal, new nested files, a link, and entries that
    // turn from file to directory and back.
    write(&dir, "a.txt", "a2");
    std::fs::remove_file(dir.join("gone.txt")).unwrap();
    write(&dir, "new/deep/c.txt", "c");
    std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
    std::fs::remove_file(dir.join("x")).unwrap();
    write(&dir, "x/inside", "now a directory");
    std::fs::remove_dir_all(dir.join("sub")).unwrap();
    write(&dir, "sub", "now a file");
    build(&d, &dir, "sync:2").ok();
    assert_eq!(
        files(&d, "sync:2"),
        [
            "./Dockerfile: FROM busybox",
            "./a.txt: a2",
            "./link -> a.txt",
            "./new/deep/c.txt: c",
            "./sub: now a file",
            "./x/inside: now a directory"
        ]
    );

    // .dockerignore applies to the synced copy too, and un-ignoring brings files back.
    write(&dir, ".dockerignore", "new\n*.txt\n");
    build(&d, &dir, "sync:3").ok();
    assert_eq!(
        files(&d, "sync:3"),
        [
            "./.dockerignore: new",
            "./Dockerfile: FROM busybox",
            "./link -> a.txt",
            "./sub: now a file",
            "./x/inside: now a directory"
        ]
    );
    std::fs::remove_file(dir.join(".dockerignore")).unwrap();
    build(&d, &dir, "sync:4").ok();
    assert_eq!(files(&d, "sync:2"), files(&d, "sync:4"));

    // A Dockerfile from outside the context is found, and an edit to it is seen.
    let outside = d.dir.path().join(berth_integration::unique("df"));
    std::fs::write(&outside, "FROM busybox\nCOPY a.txt /ctx/\n").unwrap();
    let out = d
        .berth(&[
            "build",
            "--network",
            "none",
            "-t",
            "sync:5",
            "-f",
            &outside.display().to_string(),
            &dir.display().to_string(),
        ])
        .ok();
    assert!(out.contains("Step 2/2 : COPY a.txt /ctx/"), "{out}");
    assert_eq!(files(&d, "sync:5"), ["./a.txt: a2"]);

    // The context directory itself is never changed by a build.
    assert_eq!(std::fs::read_to_string(dir.join("a.txt")).unwrap(), "a2");
    assert!(dir.join("sub").is_file());

    // builder prune --all removes the daemon's copies.
    let copies = d.data_root().join("build-contexts");
    assert!(std::fs::read_dir(&copies).unwrap().count() > 0);
    d.berth(&["builder", "prune", "--all", "--force"]).ok();
    assert_eq!(std::fs::read_dir(&copies).unwrap().count(), 0);
}

#[test]
fn the_daemon_asks_only_for_what_changed() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nCOPY . /ctx/\n"), ("keep.txt", "keep"), ("edit.txt", "v1")]);
    build(&d, &dir, "ask:1").ok();
    let key = std::fs::read_dir(d.data_root().join("build-contexts"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let stat = |name: &str| {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(dir.join(name)).unwrap();
        (m.len(), m.mtime() * 1_000_000_000 + m.mtime_nsec())
    };
    let manifest = |edit: (u64, i64)| {
        let (ks, kt) = stat("keep.txt");
        let (ds, dt) = stat("Dockerfile");
        serde_json::json!({"Entries": [entry("Dockerfile", 'f', ds, dt), entry("edit.txt", 'f', edit.0, edit.1), entry("keep.txt", 'f', ks, kt)]})
    };
    let diff = |m: &serde_json::Value| d.api("POST", &format!("/build/contexts/{key}/diff"), m.to_string().as_bytes());

    let (status, body) = diff(&manifest(stat("edit.txt")));
    assert_eq!((status, body.trim()), (200, r#"{"Need":[]}"#), "an unchanged context needs nothing");
    let (edit_size, edit_mtime) = stat("edit.txt");
    let (status, body) = diff(&manifest((edit_size, edit_mtime + 1)));
    assert_eq!((status, body.trim()), (200, r#"{"Need":["edit.txt"]}"#));

    // Bad manifests and keys are refused, naming the problem.
    let (status, body) = diff(&serde_json::json!({"Entries": [entry("../escape", 'f', 1, 1)]}));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("../escape") && body.contains("not a clean relative path"), "{body}");
    let (status, body) = diff(&serde_json::json!({"Entries": [entry("a/b", 'f', 1, 1)]}));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("listed before its directory"), "{body}");
    let (status, body) = d.api("POST", "/build/contexts/not-a-key/diff", b"{\"Entries\":[]}");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid build context key"), "{body}");

    // A build whose manifest lists a file the copy lacks and the tar does not carry is a
    // conflict (the client starts over); the copy is left usable.
    let m = serde_json::json!({"Entries": [entry("Dockerfile", 'f', stat("Dockerfile").0, stat("Dockerfile").1), entry("missing.txt", 'f', 3, 1)]});
    let json = m.to_string();
    let mut body = (json.len() as u64).to_be_bytes().to_vec();
    body.extend_from_slice(json.as_bytes());
    body.extend_from_slice(&[0u8; 1024]);
    let (status, text) = d.api("POST", &format!("/build?t=ask:bad&berthcontext={key}"), &body);
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("missing.txt"), "{text}");
    assert_eq!(d.berth(&["images", "-q", "ask:bad"]).ok(), "", "nothing is tagged");
    build(&d, &dir, "ask:2").ok();
    assert_eq!(files(&d, "ask:2"), ["./Dockerfile: FROM busybox", "./edit.txt: v1", "./keep.txt: keep"]);
}

#[test]
fn files_a_client_sends_without_listing_them_never_reach_the_build() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nCOPY . /ctx/\n")]);
    build(&d, &dir, "smuggle:1").ok();
    let key = std::fs::read_dir(d.data_root().join("build-contexts"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir.join("Dockerfile")).unwrap();
    let manifest =
        serde_json::json!({"Entries": [entry("Dockerfile", 'f', m.len(), m.mtime() * 1_000_000_000 + m.mtime_nsec())]})
            .to_string();
    let mut body = (manifest.len() as u64).to_be_bytes().to_vec();
    body.extend_from_slice(manifest.as_bytes());
    // A tar with one unlisted file.
    body.extend(super::raw_tar_entry(b"extra.txt", b"hello"));
    body.extend_from_slice(&[0u8; 1024]);
    let (status, text) = d.api("POST", &format!("/build?t=smuggle:2&berthcontext={key}"), &body);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Successfully tagged smuggle:2"), "{text}");
    assert_eq!(files(&d, "smuggle:2"), ["./Dockerfile: FROM busybox"]);
}

#[test]
fn a_copy_after_an_edited_step_reuses_its_layer() {
    let d = Daemon::with_busybox();
    let big = "x".repeat(1 << 20);
    let dir = context(
        &d,
        &[
            ("Dockerfile", "FROM busybox\nWORKDIR /app\nCOPY src /app/src\nCOPY big /app/big\n"),
            ("src/a", "a1"),
            ("big", &big),
        ],
    );
    build(&d, &dir, "reuse:1").ok();
    let layers = |image: &str| -> Vec<String> {
        serde_json::from_str(&d.berth(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", image]).ok()).unwrap()
    };
    let first = layers("reuse:1");
    write(&dir, "src/a", "a2");
    build(&d, &dir, "reuse:2").ok();
    let second = layers("reuse:2");
    assert_eq!(first.len(), second.len());
    assert_ne!(first[first.len() - 2], second[second.len() - 2], "COPY src changed");
    assert_eq!(first.last(), second.last(), "COPY big made the same layer again: reused");
    let out = d
        .berth(&["run", "--rm", "--network", "none", "reuse:2", "sh", "-c", "cat /app/src/a; echo; wc -c < /app/big"])
        .ok();
    assert_eq!(out, "a2\n1048576\n");
    // --no-cache copies again (WORKDIR makes a new /app, so the layers differ in its time).
    let out = d.berth(&["build", "--no-cache", "--network", "none", "-t", "reuse:3", &dir.display().to_string()]).ok();
    assert!(!out.contains("Using cache"), "{out}");
    let out = d
        .berth(&["run", "--rm", "--network", "none", "reuse:3", "sh", "-c", "cat /app/src/a; echo; wc -c < /app/big"])
        .ok();
    assert_eq!(out, "a2\n1048576\n");
    // reuse:5's COPY digest resumes from reuse:4's hash state after the big file; re-hashing
    // every layer from its files agrees with every recorded digest.
    let big2 = "y".repeat(5 << 20);
    write(&dir, "big", &big2);
    write(&dir, "zz-after-big", "a file sorting after the big one");
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nWORKDIR /app\nCOPY . /app/\n").unwrap();
    build(&d, &dir, "reuse:4").ok();
    write(&dir, "zz-after-big", "changed");
    build(&d, &dir, "reuse:5").ok();
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "reuse:5", "cat", "/app/zz-after-big"]).ok(), "changed");
    let check = d.berth(&["system", "check"]).ok();
    assert!(check.contains("no problems found"), "{check}");
}
