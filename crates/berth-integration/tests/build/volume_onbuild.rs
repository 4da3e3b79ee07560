//! VOLUME (later RUN changes under it discarded) and ONBUILD (triggers in a direct child).

use super::*;

#[test]
fn volume_discards_later_run_changes_and_onbuild_triggers_run_in_children() {
    let d = Daemon::with_busybox();
    let parent = "FROM busybox\nRUN mkdir /data && echo kept > /data/a\nVOLUME /data\nRUN echo lost > /data/b && echo changed > /data/a\nONBUILD RUN echo triggered > /trigger\n";
    let dir = context(&d, &[("Dockerfile", parent)]);
    build(&d, &dir, &["-t", "onbuild-parent"]).ok();
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "onbuild-parent",
            "sh",
            "-c",
            "ls /data; cat /data/a; ls /trigger 2>&1 || true",
        ])
        .ok();
    assert!(out.starts_with("a\nkept\n"), "{out}");
    let dir = context(&d, &[("Dockerfile", "FROM onbuild-parent\nRUN cat /trigger\n")]);
    let child = build(&d, &dir, &["-t", "onbuild-child"]).ok();
    assert!(child.contains("# Executing 1 build trigger"), "{child}");
    assert!(child.contains("triggered\n"), "{child}");
    assert!(
        !inspect(&d, "onbuild-child", "{{json .Config.OnBuild}}").contains("triggered"),
        "triggers run once, in the direct child only"
    );
}
