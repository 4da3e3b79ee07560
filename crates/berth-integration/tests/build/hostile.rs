//! Hostile Dockerfiles and contexts: the daemon runs as root and reads them, so each must
//! come back as a clear error while the daemon lives on and leaves nothing behind.

use super::*;

/// Regression: `${a:-${a:-…}}` nested 4,000 deep overflowed a runtime worker's stack in
/// the variable lexer, and the overflow aborted the whole daemon.
#[test]
fn deeply_nested_substitution_is_refused_and_the_daemon_lives() {
    let d = Daemon::with_busybox();
    let n = 4000;
    let df = format!("FROM busybox\nENV X={}x{}\nRUN true\n", "${a:-".repeat(n), "}".repeat(n));
    let dir = context(&d, &[("Dockerfile", &df)]);
    let r = build(&d, &dir, &[]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("nested more than 64 levels deep"), "{}", &all[all.len().saturating_sub(500)..]);
    // The daemon still answers, and still builds.
    let ok = context(&d, &[("Dockerfile", "FROM busybox\nENV X=${a:-${b:-fine}}\nRUN test \"$X\" = fine\n")]);
    build(&d, &ok, &[]).ok();
}

/// A tar member that is a FIFO (type `6`) named `name`.
fn fifo_entry(name: &str) -> Vec<u8> {
    let mut h = berth_integration::raw_tar_header(name.as_bytes(), 0);
    h[156] = b'6';
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h.to_vec()
}

fn leftover_contexts(d: &Daemon) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(d.data_root().join("builder")) else { return Vec::new() };
    rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("ctx-")).collect()
}

/// Regression: a tar context whose Dockerfile (or .dockerignore) is a FIFO made the daemon
/// open the FIFO for reading, which blocks until a writer comes: never. Each such request
/// kept a blocking-pool thread and a context directory, until the pool ran out.
#[test]
fn a_fifo_dockerfile_or_dockerignore_is_refused_not_opened() {
    let d = Daemon::with_busybox();
    let mut dockerfile_fifo = fifo_entry("Dockerfile");
    dockerfile_fifo.extend(vec![0u8; 1024]);
    let mut ignore_fifo = raw_tar_entry(b"Dockerfile", b"FROM busybox\n");
    ignore_fifo.extend(fifo_entry(".dockerignore"));
    ignore_fifo.extend(vec![0u8; 1024]);
    for (tar, name) in [(dockerfile_fifo, "Dockerfile"), (ignore_fifo, ".dockerignore")] {
        let r = d.berth_stdin(&["build", "--network", "none", "-"], &tar);
        assert_ne!(r.code, 0, "{r:?}");
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(all.contains(&format!("the context's {name} is not a regular file")), "{all}");
        assert_eq!(leftover_contexts(&d), Vec::<String>::new());
    }
    // A context with a FIFO elsewhere still builds (COPY takes it as a FIFO, never reading it).
    let mut ok = raw_tar_entry(b"Dockerfile", b"FROM busybox\nCOPY pipe /pipe\nRUN test -p /pipe\n");
    ok.extend(fifo_entry("pipe"));
    ok.extend(vec![0u8; 1024]);
    let r = d.berth_stdin(&["build", "--network", "none", "-"], &ok);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(leftover_contexts(&d), Vec::<String>::new());
}
