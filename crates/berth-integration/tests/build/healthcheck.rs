//! HEALTHCHECK: stored with its options (and NONE disables an inherited one).

use super::*;

#[test]
fn healthcheck_is_stored_and_none_disables_the_parents() {
    let d = Daemon::with_busybox();
    let dir = context(
        &d,
        &[("Dockerfile", "FROM busybox\nHEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD test -e /\n")],
    );
    build(&d, &dir, &["-t", "hc-parent"]).ok();
    assert_eq!(
        inspect(
            &d,
            "hc-parent",
            "{{json .Config.Healthcheck.Test}} {{.Config.Healthcheck.Retries}} {{.Config.Healthcheck.Interval}}"
        ),
        r#"["CMD-SHELL","test -e /"] 4 5000000000"#
    );
    let dir = context(&d, &[("Dockerfile", "FROM hc-parent\nHEALTHCHECK NONE\n")]);
    build(&d, &dir, &["-t", "hc-none"]).ok();
    assert_eq!(inspect(&d, "hc-none", "{{json .Config.Healthcheck.Test}}"), r#"["NONE"]"#);
}
