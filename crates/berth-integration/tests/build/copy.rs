//! COPY: destinations, owners, modes.

use super::*;

#[test]
fn copy_destinations_owners_and_modes() {
    let d = Daemon::with_busybox();
    let df = "FROM busybox
WORKDIR /w
COPY f1 rel/
COPY f1 renamed
COPY dir /tree
COPY --chown=postgres:postgres --chmod=640 f1 f2 /owned/
COPY *.glob /globbed/
COPY <<EOF /inline.txt
heredoc $HOME
EOF
RUN <<EOF
echo from-heredoc > /run-heredoc
EOF
";
    let dir = context(
        &d,
        &[
            ("Dockerfile", df),
            ("f1", "one"),
            ("f2", "two"),
            ("dir/sub/x", "x"),
            ("dir/y", "y"),
            ("a.glob", "a"),
            ("b.glob", "b"),
        ],
    );
    build(&d, &dir, &["-t", "copies"]).ok();
    let script = "cat /w/rel/f1 /w/renamed; echo; ls /tree /tree/sub; stat -c '%U:%G %a' /owned/f1 /owned/f2; ls /globbed; cat /inline.txt /run-heredoc";
    let out = d.berth(&["run", "--rm", "--network", "none", "copies", "sh", "-c", script]).ok();
    assert_eq!(
        out,
        "oneone\n/tree:\nsub\ny\n\n/tree/sub:\nx\npostgres:postgres 640\npostgres:postgres 640\na.glob\nb.glob\nheredoc \nfrom-heredoc\n"
    );
}
