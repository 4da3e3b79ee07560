//! BuildKit's COPY/ADD flags: `--exclude`, `--parents`, `ADD --checksum`, `ADD` of a git
//! repository.

use std::process::{Command, Stdio};

use super::*;

/// Every path under `dir` in `image`, sorted.
fn ls(d: &Daemon, image: &str, dir: &str) -> String {
    d.berth(&["run", "--rm", "--network", "none", image, "sh", "-c", &format!("find {dir} | sort")]).ok()
}

#[test]
fn copy_exclude_leaves_out_what_the_patterns_match() {
    let d = Daemon::with_busybox();
    let dir = context(
        &d,
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY --exclude=*.md --exclude=sub/skip . /all/\nCOPY --exclude=*.txt hom* /some/\n",
            ),
            ("a.txt", "a"),
            ("README.md", "r"),
            ("sub/keep.txt", "k"),
            ("sub/skip", "s"),
            ("sub/x.md", "nested md is not *.md"),
            ("home.txt", "h"),
            ("homer.sh", "h"),
        ],
    );
    build(&d, &dir, &["-t", "excl"]).ok();
    let all = ls(&d, "excl", "/all");
    for present in ["/all/a.txt", "/all/sub/keep.txt", "/all/sub/x.md", "/all/Dockerfile"] {
        assert!(all.lines().any(|l| l == present), "{present} missing: {all}");
    }
    for absent in ["README.md", "sub/skip"] {
        assert!(!all.contains(absent), "{absent} copied: {all}");
    }
    assert_eq!(ls(&d, "excl", "/some"), "/some\n/some/homer.sh\n");
    // The patterns are part of the step's key.
    let again = build(&d, &dir, &[]).ok();
    assert_eq!(steps_cached(&again), 2, "{again}");
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nCOPY --exclude=*.txt . /all/\n").unwrap();
    assert_eq!(steps_cached(&build(&d, &dir, &[]).ok()), 0);
}

#[test]
fn copy_parents_keeps_the_source_directories() {
    let d = Daemon::with_busybox();
    let dir = context(
        &d,
        &[
            (
                "Dockerfile",
                "FROM busybox AS src\nRUN mkdir -p /app/pkg/a && echo bin > /app/pkg/a/tool\n\
                 FROM busybox\nCOPY --parents x/a.txt y/*.txt /p/\nCOPY --parents ./base/./lib/z.txt /pivot/\n\
                 COPY --parents --from=src /app/./pkg/a/tool /stage/\n",
            ),
            ("x/a.txt", "xa"),
            ("y/b.txt", "yb"),
            ("y/c.txt", "yc"),
            ("base/lib/z.txt", "z"),
        ],
    );
    build(&d, &dir, &["-t", "parents"]).ok();
    assert_eq!(ls(&d, "parents", "/p"), "/p\n/p/x\n/p/x/a.txt\n/p/y\n/p/y/b.txt\n/p/y/c.txt\n");
    assert_eq!(ls(&d, "parents", "/pivot"), "/pivot\n/pivot/lib\n/pivot/lib/z.txt\n");
    assert_eq!(ls(&d, "parents", "/stage"), "/stage\n/stage/pkg\n/stage/pkg/a\n/stage/pkg/a/tool\n");
}

#[test]
fn add_checksum_is_checked_and_only_for_remote_sources() {
    let d = Daemon::with_busybox();
    let body = b"downloaded\n".to_vec();
    let sum = {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), &body).unwrap();
        let o = Command::new("sha256sum").arg(dir.path().join("f")).output().unwrap();
        String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap().to_string()
    };
    let (port, server) = serve(vec![("/f.txt", body.clone()), ("/g.txt", body)], 2);
    let ok = context(
        &d,
        &[("Dockerfile", &format!("FROM busybox\nADD --checksum=sha256:{sum} http://127.0.0.1:{port}/f.txt /f.txt\n"))],
    );
    build(&d, &ok, &["-t", "sum"]).ok();
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "sum", "cat", "/f.txt"]).ok(), "downloaded\n");
    let wrong = "0".repeat(64);
    let bad = context(
        &d,
        &[(
            "Dockerfile",
            &format!("FROM busybox\nADD --checksum=sha256:{wrong} http://127.0.0.1:{port}/g.txt /g.txt\n"),
        )],
    );
    let r = build(&d, &bad, &[]);
    assert!(r.code != 0 && r.stderr.contains(&format!("digest mismatch sha256:{sum}")), "{r:?}");
    server.join().unwrap();
    let local =
        context(&d, &[("Dockerfile", &format!("FROM busybox\nADD --checksum=sha256:{sum} f /f\n")), ("f", "x")]);
    let r = build(&d, &local, &[]);
    assert!(r.stderr.contains("checksum can't be specified for non-HTTP(S) sources"), "{r:?}");
    let copy =
        context(&d, &[("Dockerfile", &format!("FROM busybox\nCOPY --checksum=sha256:{sum} f /f\n")), ("f", "x")]);
    let r = build(&d, &copy, &[]);
    assert!(r.code != 0 && r.stderr.contains("unknown flag: --checksum"), "{r:?}");
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {o:?}");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn add_of_a_git_repository_checks_it_out_without_its_git_directory() {
    let d = Daemon::with_busybox();
    // A repository served over plain HTTP (git's "dumb" protocol) by a local web server.
    let repos = d.dir.path().join(berth_integration::unique("repos"));
    let work = repos.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("hello.txt"), "from git\n").unwrap();
    git(&work, &["add", "hello.txt"]);
    git(&work, &["commit", "-q", "-m", "one"]);
    let commit = git(&work, &["rev-parse", "HEAD"]);
    git(&repos, &["clone", "-q", "--bare", "work", "repo.git"]);
    git(&repos.join("repo.git"), &["update-server-info"]);
    let port = berth_integration::free_port();
    let mut server = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory"])
        .arg(&repos)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    berth_integration::until_serving(([127, 0, 0, 1], port));
    let url = format!("http://127.0.0.1:{port}/repo.git#main");
    let dir = context(
        &d,
        &[(
            "Dockerfile",
            &format!("FROM busybox\nADD --checksum={commit} {url} /src/\nADD --keep-git-dir=true {url} /with-git/\n"),
        )],
    );
    let r = build(&d, &dir, &["-t", "fromgit"]);
    let bad = context(&d, &[("Dockerfile", &format!("FROM busybox\nADD --checksum=0123456789abcdef {url} /src/\n"))]);
    let mismatch = build(&d, &bad, &[]);
    let _ = server.kill();
    let _ = server.wait();
    r.ok();
    assert_eq!(ls(&d, "fromgit", "/src"), "/src\n/src/hello.txt\n");
    assert!(ls(&d, "fromgit", "/with-git").contains("/with-git/.git/HEAD"));
    assert!(mismatch.code != 0 && mismatch.stderr.contains("expected checksum 0123456789abcdef"), "{mismatch:?}");
}

#[test]
fn add_of_a_git_repository_without_git_says_so() {
    let mut d = Daemon::with_busybox();
    // A PATH without git (the daemon needs only nft from /usr/sbin).
    d.env.push(("PATH".into(), "/usr/sbin:/sbin".into()));
    d.restart();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nADD https://example.invalid/r.git /src/\n")]);
    let r = build(&d, &dir, &[]);
    assert!(r.code != 0 && r.stderr.contains("git is not installed on the daemon's host"), "{r:?}");
}
