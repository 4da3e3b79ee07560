//! `-o type=local` and `-o type=tar`: the built filesystem sent back to the client.

use super::*;

#[test]
fn local_and_tar_outputs_receive_the_built_files() {
    let d = Daemon::with_busybox();
    let ctx = files(
        &d,
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY msg /out/msg\nRUN mkdir -p /out/sub && echo made > /out/sub/made && ln -s msg /out/link\n",
            ),
            ("msg", "exported\n"),
        ],
    );
    let dest = ctx.join("dest");
    let dest_s = dest.display().to_string();
    docker(&d, &ctx, &["buildx", "build", "--network", "none", "-o", &format!("type=local,dest={dest_s}"), "."]).ok();
    assert_eq!(std::fs::read_to_string(dest.join("out/msg")).unwrap(), "exported\n");
    assert_eq!(std::fs::read_to_string(dest.join("out/sub/made")).unwrap(), "made\n");
    assert_eq!(std::fs::read_link(dest.join("out/link")).unwrap(), Path::new("msg"));
    assert!(dest.join("bin/busybox").is_file());

    let tar = ctx.join("out.tar");
    let tar_s = tar.display().to_string();
    docker(&d, &ctx, &["buildx", "build", "--network", "none", "-o", &format!("type=tar,dest={tar_s}"), "."]).ok();
    let list = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.lines().any(|l| l == "out/sub/made"), "{list}");
    let got = Command::new("tar").arg("-xOf").arg(&tar).arg("out/msg").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout), "exported\n");
}
