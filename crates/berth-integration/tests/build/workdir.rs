//! WORKDIR: created if missing, relative to the previous one, with variables.

use super::*;

#[test]
fn workdir_is_created_relative_to_the_previous_and_is_where_run_starts() {
    let d = Daemon::with_busybox();
    let dir = context(
        &d,
        &[(
            "Dockerfile",
            "FROM busybox\nENV BASE=/srv\nWORKDIR $BASE/app\nWORKDIR sub\nRUN pwd > /where && touch here\n",
        )],
    );
    build(&d, &dir, &["-t", "wd"]).ok();
    assert_eq!(inspect(&d, "wd", "{{.Config.WorkingDir}}"), "/srv/app/sub");
    assert_eq!(
        d.berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "wd",
            "sh",
            "-c",
            "cat /where; pwd; test -e /srv/app/sub/here && echo made"
        ])
        .ok(),
        "/srv/app/sub\n/srv/app/sub\nmade\n"
    );
}
