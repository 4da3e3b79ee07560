//! Filters and API versions as Docker clients rely on them: `name=` filters are unanchored
//! regular expressions in `ps`, `volume ls` and `network ls`; `volume prune` keeps its
//! pre-1.42 meaning (named volumes too) for older clients; every JSON-valued query
//! parameter takes `null` (Go clients send it for what they leave unset).

use berth_integration::{Daemon, raw_tar_entry, unique};

fn lines(s: String) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn name_filters_are_regular_expressions() {
    let d = Daemon::with_busybox();
    let p = unique("rx");
    let (a1, b22) = (format!("{p}-a1"), format!("{p}-b22"));
    for n in [&a1, &b22] {
        d.docker(&["create", "--name", n, "busybox", "true"]).ok();
        d.docker(&["volume", "create", n]).ok();
        d.docker(&["network", "create", n]).ok();
    }
    let exact = format!("name=^{p}-a[0-9]$");
    let digits = format!("name={p}-.[0-9]+");
    let slash = format!("name=^/{p}-b");
    let ps = |f: &str| lines(d.docker(&["ps", "-a", "--filter", f, "--format", "{{.Names}}"]).ok());
    assert_eq!(ps(&exact), vec![a1.clone()]);
    assert_eq!(ps(&digits), vec![a1.clone(), b22.clone()]);
    assert_eq!(ps(&slash), vec![b22.clone()], "the name with its leading slash matches too");
    assert_eq!(ps(&format!("name=^{p}-a$")), Vec::<String>::new());
    let vols = |f: &str| lines(d.docker(&["volume", "ls", "-q", "--filter", f]).ok());
    assert_eq!(vols(&exact), vec![a1.clone()]);
    assert_eq!(vols(&format!("name={p}-b2+$")), vec![b22.clone()]);
    let nets = |f: &str| lines(d.docker(&["network", "ls", "--filter", f, "--format", "{{.Name}}"]).ok());
    assert_eq!(nets(&exact), vec![a1.clone()]);
    assert_eq!(nets(&digits), vec![a1.clone(), b22.clone()]);
    for n in [&a1, &b22] {
        d.docker(&["rm", "-f", n]).ok();
        d.docker(&["volume", "rm", n]).ok();
        d.docker(&["network", "rm", n]).ok();
    }
}

#[test]
fn volume_prune_keeps_older_clients_meaning_and_null_query_values_are_accepted() {
    let d = Daemon::with_busybox();
    let named = unique("keep");
    d.docker(&["volume", "create", &named]).ok();
    // API 1.42+: prune takes anonymous volumes only (the docker CLI 28 speaks 1.45 here).
    d.docker(&["volume", "prune", "-f"]).ok();
    assert_eq!(d.docker(&["volume", "ls", "-q"]).ok().trim(), named);
    let (status, body) = d.api("POST", "/v1.45/volumes/prune", b"");
    assert_eq!(status, 200, "{body}");
    assert_eq!(d.docker(&["volume", "ls", "-q"]).ok().trim(), named);
    // An API 1.41 client (docker-py 6 defaults to "auto", older SDKs pin it) prunes named
    // volumes too, as dockerd did then.
    let (status, body) = d.api("POST", "/v1.41/volumes/prune", b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&named), "{body}");
    assert_eq!(d.docker(&["volume", "ls", "-q"]).ok().trim(), "");

    for (method, path) in [
        ("GET", "/v1.45/containers/json?all=1&filters=null"),
        ("GET", "/v1.45/images/json?filters=null"),
        ("GET", "/v1.45/volumes?filters=null"),
        ("GET", "/v1.45/networks?filters=null"),
        ("GET", "/v1.45/events?filters=null&since=1&until=2"),
        ("POST", "/v1.45/containers/prune?filters=null"),
        ("POST", "/v1.45/images/prune?filters=null"),
        ("POST", "/v1.45/networks/prune?filters=null"),
        ("POST", "/v1.45/volumes/prune?filters=null"),
    ] {
        let (status, body) = d.api(method, path, b"");
        assert_eq!(status, 200, "{method} {path}: {body}");
    }
    // The Go SDK sends buildargs=null (and labels, cachefrom) on every build.
    let tag = unique("nullbuild");
    let mut ctx = raw_tar_entry(b"Dockerfile", b"FROM busybox\nLABEL x=1\n");
    ctx.extend_from_slice(&[0u8; 1024]);
    let (status, body) =
        d.api("POST", &format!("/v1.45/build?t={tag}&buildargs=null&labels=null&cachefrom=null"), &ctx);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("errorDetail"), "{body}");
    d.docker(&["image", "inspect", &tag]).ok();
    d.docker(&["rmi", &tag]).ok();
}
