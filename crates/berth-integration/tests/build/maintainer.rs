//! MAINTAINER: the image's author.

use super::*;

#[test]
fn maintainer_sets_the_author() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nMAINTAINER Someone <someone@example.com>\n")]);
    build(&d, &dir, &["-t", "maintained"]).ok();
    assert_eq!(inspect(&d, "maintained", "{{.Author}}"), "Someone <someone@example.com>");
}
