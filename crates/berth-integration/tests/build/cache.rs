//! The step cache: reuse until the first change, persistence, history, --cache-from, --debug-cache-key, prune.

use super::*;

#[test]
fn the_cache_reuses_steps_until_the_first_change() {
    let d = Daemon::with_busybox();
    let mut df = String::from(
        "FROM busybox\nCOPY a.txt /a.txt\nRUN echo one > /one\nRUN echo two > /two\nCMD [\"cat\", \"/a.txt\"]\n",
    );
    let dir = context(&d, &[("Dockerfile", &df), ("a.txt", "content\n")]);
    let first = build(&d, &dir, &["-t", "cached"]).ok();
    assert_eq!(steps_cached(&first), 0, "{first}");
    let id1 = inspect(&d, "cached", "{{.Id}}");

    // Nothing changed: every step is cached and the result is the same image.
    let second = build(&d, &dir, &["-t", "cached"]).ok();
    assert_eq!(steps_cached(&second), 4, "{second}");
    assert!(!second.contains("Running in"), "{second}");
    assert_eq!(inspect(&d, "cached", "{{.Id}}"), id1);

    // Touching a file without changing it keeps the cache.
    let f = std::fs::File::options().write(true).open(dir.join("a.txt")).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(100)).unwrap();
    let touched = build(&d, &dir, &["-t", "cached"]).ok();
    assert_eq!(steps_cached(&touched), 4, "{touched}");

    // Editing a late line reruns only from there.
    df = df.replace("echo two", "echo TWO");
    std::fs::write(dir.join("Dockerfile"), &df).unwrap();
    let edited = build(&d, &dir, &["-t", "cached"]).ok();
    assert_eq!(steps_cached(&edited), 2, "{edited}");
    assert_eq!(edited.matches("Running in").count(), 1, "{edited}");

    // Changing the copied file's content reruns the COPY and everything after it.
    std::fs::write(dir.join("a.txt"), "changed\n").unwrap();
    let changed = build(&d, &dir, &["-t", "cached"]).ok();
    assert_eq!(steps_cached(&changed), 0, "{changed}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "cached"]).ok(), "changed\n");

    // --no-cache runs everything.
    let nocache = build(&d, &dir, &["-t", "cached", "--no-cache"]).ok();
    assert_eq!(steps_cached(&nocache), 0, "{nocache}");
    assert_eq!(nocache.matches("Running in").count(), 2, "{nocache}");
}

#[test]
fn the_cache_survives_a_daemon_restart() {
    let mut d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nRUN echo x > /x\nLABEL a=b\n")]);
    build(&d, &dir, &["-t", "persist"]).ok();
    d.restart();
    let out = build(&d, &dir, &["-t", "persist"]).ok();
    assert_eq!(steps_cached(&out), 2, "{out}");
}

#[test]
fn history_has_one_row_per_step() {
    let d = Daemon::with_busybox();
    let dir = context(
        &d,
        &[("Dockerfile", "FROM busybox\nENV A=1\nCOPY f /f\nRUN echo hi > /g\nCMD [\"sh\"]\n"), ("f", "f")],
    );
    build(&d, &dir, &["-t", "hist"]).ok();
    let rows = d.berth(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", "hist"]).ok();
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(rows[0], r#"/bin/sh -c #(nop)  CMD ["sh"]"#, "{rows:?}");
    assert_eq!(rows[1], "/bin/sh -c echo hi > /g", "{rows:?}");
    assert!(rows[2].starts_with("/bin/sh -c #(nop) COPY file:") && rows[2].ends_with(" in /f "), "{rows:?}");
    assert_eq!(rows[3], "/bin/sh -c #(nop)  ENV A=1", "{rows:?}");
    assert_eq!(rows.len(), 5, "the four steps and the base image's row: {rows:?}");
}

#[test]
fn identical_layers_twice_and_steps_that_change_nothing() {
    let d = Daemon::with_busybox();
    // The two COPYs make byte-identical layers; the RUN after them must still start.
    let df = "FROM busybox\nCOPY f /f\nRUN true\nCOPY f /f\nRUN cat /f\nRUN echo err >&2\n";
    let dir = context(&d, &[("Dockerfile", df), ("f", "same\n")]);
    let out = build(&d, &dir, &["-t", "dupes"]).ok();
    assert!(out.contains("same\n"), "{out}");
    assert!(out.contains("\u{1b}[91merr\n\u{1b}[0m"), "stderr is shown in red, as Docker does: {out:?}");
    let sizes = d.berth(&["history", "--format", "{{.Size}}", "dupes"]).ok();
    let sizes: Vec<&str> = sizes.lines().collect();
    assert_eq!(sizes[..5], ["0B", "0B", "5B", "0B", "5B"], "RUN steps that change nothing add no bytes");
}

#[test]
fn cache_from_and_debug_cache_key() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nENV FOO=bar\nRUN touch /baz\n")]);
    build(&d, &dir, &["-t", "cf1"]).ok();
    let out = build(&d, &dir, &["-t", "cf2", "--cache-from", "cf1"]).ok();
    assert_eq!(steps_cached(&out), 2, "{out}");
    let out = build(&d, &dir, &["-t", "cf3", "--cache-from", "nosuchtag"]).ok();
    assert_eq!(steps_cached(&out), 0, "only the named images are cache sources: {out}");
    let out = build(&d, &dir, &["--debug-cache-key"]).ok();
    assert!(
        out.contains(" ---> cache key sha256:")
            && out.contains("instruction: ENV FOO=bar")
            && out.contains("run: [\"/bin/sh\",\"-c\",\"touch /baz\"]"),
        "{out}"
    );
}

#[test]
fn labels_from_the_command_line_and_builder_prune() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nRUN echo a > /a\n")]);
    let out = build(&d, &dir, &["-t", "labeled", "--label", "team=core"]).ok();
    assert!(out.contains("Step 3/3 : LABEL \"team\"=\"core\""), "{out}");
    assert_eq!(inspect(&d, "labeled", "{{.Config.Labels.team}}"), "core");
    // An untagged earlier build is cache only: prune removes it, keeps the tagged one.
    let dir2 = context(&d, &[("Dockerfile", "FROM busybox\nRUN echo b > /b\n")]);
    build(&d, &dir2, &[]).ok();
    let pruned = d.berth(&["builder", "prune", "-f"]).ok();
    assert!(pruned.contains("Deleted: sha256:"), "{pruned}");
    assert!(pruned.contains("Total:"), "{pruned}");
    let again = build(&d, &dir, &["-t", "labeled", "--label", "team=core"]).ok();
    assert_eq!(steps_cached(&again), 2, "the tagged image's steps stay cached: {again}");
    let again2 = build(&d, &dir2, &[]).ok();
    assert_eq!(steps_cached(&again2), 0, "{again2}");
    d.berth(&["builder", "prune", "-a", "-f"]).ok();
    let after_all = build(&d, &dir, &["-t", "labeled", "--label", "team=core"]).ok();
    assert_eq!(steps_cached(&after_all), 0, "{after_all}");
}

/// `tag` saved, its last history row's command changed from `from` to `to`, loaded back:
/// an image whose history lies about how its top layer was made.
fn load_with_forged_history(d: &Daemon, tag: &str, from: &str, to: &str) {
    let work = d.dir.path().join(berth_integration::unique("forge"));
    let tree = work.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let tar = work.join("saved.tar");
    d.berth(&["save", "-o", tar.to_str().unwrap(), tag]).ok();
    let untar = std::process::Command::new("tar").arg("-C").arg(&tree).arg("-xf").arg(&tar).status().unwrap();
    assert!(untar.success());
    // The loader reads manifest.json first and takes the config it names as it is.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tree.join("manifest.json")).unwrap()).unwrap();
    let config_path = tree.join(manifest[0]["Config"].as_str().unwrap());
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    let row = config["history"].as_array_mut().unwrap().last_mut().unwrap();
    let forged = row["created_by"].as_str().unwrap().replace(from, to);
    assert_ne!(row["created_by"].as_str().unwrap(), forged, "the row to forge: {row}");
    row["created_by"] = forged.into();
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let forged_tar = work.join("forged.tar");
    let retar =
        std::process::Command::new("tar").arg("-C").arg(&tree).arg("-cf").arg(&forged_tar).arg(".").status().unwrap();
    assert!(retar.success());
    d.berth(&["load", "-i", forged_tar.to_str().unwrap()]).ok();
    std::fs::remove_dir_all(work).unwrap();
}

/// Regression: a `--cache-from` image trusted by one build poisoned the daemon's cache for
/// every later build. The source's hit went into the daemon-wide index, and the steps
/// built on top of it were keyed on the step keys alone, so a later build that did not
/// name the source (and rebuilt the forged step honestly) still took the next step from
/// the cache: an image on top of the attacker's layer.
#[test]
fn a_cache_from_source_is_trusted_only_by_the_build_that_names_it() {
    let d = Daemon::with_busybox();
    let attacker = berth_integration::unique("attacker");
    let evil = context(&d, &[("Dockerfile", "FROM busybox\nRUN echo EVIL > /out\n")]);
    build(&d, &evil, &["-t", &attacker]).ok();
    load_with_forged_history(&d, &attacker, "echo EVIL > /out", "echo built-honestly > /out");

    let victim =
        context(&d, &[("Dockerfile", "FROM busybox\nRUN echo built-honestly > /out\nCMD [\"cat\", \"/out\"]\n")]);
    // The build that names the source takes it (the probe reaches its target).
    let pr = berth_integration::unique("pr");
    let out = build(&d, &victim, &["--cache-from", &attacker, "-t", &pr]).ok();
    assert!(steps_cached(&out) >= 1, "the forged row is a hit for the build that trusts it: {out}");
    let run = |tag: &str| d.berth(&["run", "--rm", "--network", "none", tag]).ok();
    assert_eq!(run(&pr).trim(), "EVIL");

    // A build that names no source gets nothing of it, neither the forged step nor the
    // steps the first build made on top of it.
    let release = berth_integration::unique("release");
    let out = build(&d, &victim, &["-t", &release]).ok();
    assert_eq!(steps_cached(&out), 0, "{out}");
    assert_eq!(run(&release).trim(), "built-honestly");
    // And its own steps are the cache from now on.
    let out = build(&d, &victim, &["-t", &release]).ok();
    assert_eq!(steps_cached(&out), 2, "{out}");
    assert_eq!(run(&release).trim(), "built-honestly");
}
