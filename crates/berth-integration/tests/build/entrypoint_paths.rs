//! ENTRYPOINT and the stage's own CMD, and Dockerfiles named by absolute or nested paths
//! (issue 16, point 8).

use super::*;

#[test]
fn entrypoint_resets_only_an_inherited_cmd() {
    let d = Daemon::with_busybox();
    let run = |df: &str, tag: &str| {
        let dir = context(&d, &[("Dockerfile", df)]);
        let o = d
            .docker_cmd()
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "--network", "none", "-t", tag])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run("FROM busybox\nCMD [\"from the stage\"]\nENTRYPOINT [\"echo\"]\n", "ownc");
    assert_eq!(
        d.docker(&["image", "inspect", "-f", "{{json .Config.Cmd}}", "ownc"]).ok().trim(),
        r#"["from the stage"]"#
    );
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", "ownc"]).ok(), "from the stage\n");
    run("FROM busybox\nCMD [\"base\"]\n", "basec");
    run("FROM basec\nENTRYPOINT [\"echo\", \"ep\"]\n", "inheritc");
    assert_eq!(d.docker(&["image", "inspect", "-f", "{{json .Config.Cmd}}", "inheritc"]).ok().trim(), "null");
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", "inheritc"]).ok(), "ep\n");
}

#[test]
fn dockerfiles_by_absolute_or_nested_path_build_the_right_file() {
    let d = Daemon::with_busybox();
    let ctx = context(
        &d,
        &[
            ("Dockerfile", "FROM busybox\nCMD [\"echo\", \"root\"]\n"),
            ("sub/Dockerfile.nested", "FROM busybox\nCMD [\"echo\", \"nested\"]\n"),
        ],
    );
    let outside = context(&d, &[("Dockerfile.outside", "FROM busybox\nCMD [\"echo\", \"outside\"]\n")]);
    let nested = ctx.join("sub/Dockerfile.nested").display().to_string();
    let out_df = outside.join("Dockerfile.outside").display().to_string();
    let c = ctx.display().to_string();
    let cmd = |tag: &str| d.docker(&["image", "inspect", "-f", "{{json .Config.Cmd}}", tag]).ok().trim().to_string();
    // The docker CLI: an absolute path inside the context, a nested relative one, and one
    // outside the context (which the CLI adds to the context under a random name).
    for (tag, f) in [("cli-abs", nested.as_str()), ("cli-out", out_df.as_str())] {
        let o = d
            .docker_cmd()
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "--network", "none", "-t", tag, "-f", f, &c])
            .output()
            .unwrap();
        assert!(o.status.success(), "{tag}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let o = d
        .docker_cmd()
        .env("DOCKER_BUILDKIT", "0")
        .current_dir(&ctx)
        .args(["build", "--network", "none", "-t", "cli-rel", "-f", "sub/Dockerfile.nested", "."])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(cmd("cli-abs"), r#"["echo","nested"]"#);
    assert_eq!(cmd("cli-rel"), r#"["echo","nested"]"#);
    assert_eq!(cmd("cli-out"), r#"["echo","outside"]"#);
    // docker-py's `dockerfile=` forms.
    let script = r#"
import sys, docker
c = docker.from_env().api
ctx, nested, outside = sys.argv[1], sys.argv[2], sys.argv[3]
for tag, df in [("py-abs", nested), ("py-rel", "sub/Dockerfile.nested"), ("py-dot", "./sub/Dockerfile.nested"), ("py-out", outside)]:
    for line in c.build(path=ctx, dockerfile=df, tag=tag, rm=True, network_mode="none", decode=True):
        if "error" in line:
            raise SystemExit(tag + ": " + line["error"])
print("ok")
"#;
    assert_eq!(d.docker_py(script, &[&c, &nested, &out_df]).ok().trim(), "ok");
    for t in ["py-abs", "py-rel", "py-dot"] {
        assert_eq!(cmd(t), r#"["echo","nested"]"#, "{t}");
    }
    assert_eq!(cmd("py-out"), r#"["echo","outside"]"#);
}
