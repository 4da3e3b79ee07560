//! The `label`, `label!` and `until` filters of container, volume and network prune, as
//! dockerd applies them (issue 16, point 6).

use berth_integration::{Daemon, unique};

fn lines(s: String) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// `network prune --filter label!=keep` deleted the labelled networks too (the filter was
/// ignored). Now, on all three prunes: `label!=k` keeps what has k; several `label!` keep
/// only what matches all of them (dockerd's rule); `label=k=v` takes only those; `until`
/// keeps what is newer; two `until` are refused.
#[test]
fn prune_label_and_until_filters_as_dockerd() {
    let d = Daemon::with_busybox();
    let (keep, plain, other, both) = (unique("keep"), unique("plain"), unique("other"), unique("both"));
    let labels = |name: &str| -> Vec<&'static str> {
        if *name == keep {
            vec!["--label", "keep=yes"]
        } else if *name == other {
            vec!["--label", "keep=no"]
        } else if *name == both {
            vec!["--label", "keep=yes", "--label", "also"]
        } else {
            vec![]
        }
    };
    let all = [&keep, &plain, &other, &both];
    for n in all {
        let mut a = vec!["network", "create"];
        a.extend(labels(n));
        a.push(n);
        d.docker(&a).ok();
        let mut a = vec!["volume", "create"];
        a.extend(labels(n));
        a.push(n);
        d.docker(&a).ok();
        let mut a = vec!["create", "--name", n.as_str(), "--network", "none"];
        a.extend(labels(n));
        a.extend(["busybox", "true"]);
        d.docker(&a).ok();
    }
    let left = |kind: &str| -> Vec<String> {
        let out = match kind {
            "network" => d.docker(&["network", "ls", "--filter", "type=custom", "--format", "{{.Name}}"]).ok(),
            "volume" => d.docker(&["volume", "ls", "--format", "{{.Name}}"]).ok(),
            _ => d.docker(&["ps", "-a", "--format", "{{.Names}}"]).ok(),
        };
        lines(out)
    };
    for kind in ["network", "volume", "container"] {
        let want = lines(all.iter().map(|s| format!("{s}\n")).collect());
        let prune = |extra: &[&str]| {
            let mut a = vec![kind, "prune", "-f"];
            if kind == "volume" {
                a.extend(["--filter", "all=true"]);
            }
            a.extend(extra);
            d.docker(&a).ok();
        };
        // Created just now: nothing is older than an hour (volume prune has no until).
        if kind != "volume" {
            prune(&["--filter", "until=1h"]);
            assert_eq!(left(kind), want, "{kind} prune until=1h");
            let err = d.docker(&[kind, "prune", "-f", "--filter", "until=1h", "--filter", "until=2h"]).fails();
            assert!(err.contains("more than one until filter specified"), "{kind}: {err}");
        }
        // Both label! values must match to keep: only `both` has keep and also.
        prune(&["--filter", "label!=keep", "--filter", "label!=also"]);
        assert_eq!(left(kind), vec![both.clone()], "{kind} prune label!=keep label!=also");
    }
    // A fresh set for label! alone and label=k=v.
    let (k2, p2, o2) = (unique("keep"), unique("plain"), unique("other"));
    for (n, l) in [(&k2, Some("keep=yes")), (&p2, None), (&o2, Some("keep=no"))] {
        let lab: Vec<&str> = l.map(|l| vec!["--label", l]).unwrap_or_default();
        let mut a = vec!["network", "create"];
        a.extend(lab.iter().copied());
        a.push(n);
        d.docker(&a).ok();
        let mut a = vec!["volume", "create"];
        a.extend(lab.iter().copied());
        a.push(n);
        d.docker(&a).ok();
        let mut a = vec!["create", "--name", n.as_str(), "--network", "none"];
        a.extend(lab.iter().copied());
        a.extend(["busybox", "true"]);
        d.docker(&a).ok();
    }
    for kind in ["network", "volume", "container"] {
        let prune = |extra: &[&str]| {
            let mut a = vec![kind, "prune", "-f"];
            if kind == "volume" {
                a.extend(["--filter", "all=true"]);
            }
            a.extend(extra);
            d.docker(&a).ok();
        };
        prune(&["--filter", "label!=keep"]);
        assert_eq!(left(kind), lines(format!("{both}\n{k2}\n{o2}\n")), "{kind} prune label!=keep");
        prune(&["--filter", "label=keep=no"]);
        assert_eq!(left(kind), lines(format!("{both}\n{k2}\n")), "{kind} prune label=keep=no");
    }
    d.docker(&["rm", &both, &k2]).ok();
    d.docker(&["network", "rm", &both, &k2]).ok();
    d.docker(&["volume", "rm", &both, &k2]).ok();
}

/// `image prune --filter label!=keep` deleted the labelled images too (the filter was taken
/// and ignored); it keeps them now, as the other prunes do.
#[test]
fn image_prune_keeps_what_label_not_names() {
    let d = Daemon::with_busybox();
    let (kept, gone) = (unique("keptimg"), unique("goneimg"));
    for (tag, label) in [(&kept, "LABEL keep=yes\n"), (&gone, "LABEL other=yes\n")] {
        let dir = d.dir.path().join(unique("ctx"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), format!("FROM busybox\n{label}")).unwrap();
        d.berth(&["build", "--network", "none", "-t", tag, &dir.display().to_string()]).ok();
    }
    d.docker(&["image", "prune", "-a", "-f", "--filter", "label!=keep"]).ok();
    let left = d.docker(&["images", "--format", "{{.Repository}}"]).ok();
    assert!(left.lines().any(|l| l == kept), "{left}");
    assert!(!left.lines().any(|l| l == gone), "{left}");
}
