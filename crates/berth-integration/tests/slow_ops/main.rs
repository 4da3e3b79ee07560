//! A slow `pause` or `rm` never stalls other requests. Several such operations are put in
//! progress at once (more than the 2 runtime workers the daemon used to have, each of which
//! a freeze or deletion used to hold), kept in progress by the kernel itself (see
//! [`gate`]), and then 50 `GET /containers/json` must all be answered before the test lets
//! the slow operations finish. Ordering is checked by completion: no slow operation may have
//! answered when the last listing has; nothing is timed.
//!
//! Why a FUSE gate and not a fault-injection knob in the daemon: the real kernel can hold
//! both operations for as long as the test wants. A task waiting on a FUSE answer cannot be
//! frozen, so its cgroup stays FREEZING (a real `docker pause` of a container blocked on a
//! hung FUSE or network filesystem does this); and a deletion that reaches a FUSE directory
//! waits for its answer. The rm case also holds a 200k-file tree, so the deletion is slow
//! in itself too.

mod gate;

use std::sync::atomic::{AtomicUsize, Ordering};

use berth_integration::Daemon;
use gate::Gate;

/// Slow operations in progress at once.
const SLOW: usize = 3;
/// `ps` calls answered meanwhile.
const PS_CALLS: usize = 50;

/// Polls `f` (a kernel file that has no event to await) for up to a minute.
#[track_caller]
fn wait_until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..6000 {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("timed out waiting until {what}");
}

fn freezer_state(d: &Daemon, id: &str) -> String {
    let f = format!("/sys/fs/cgroup/freezer/{}/{id}/freezer.state", d.cgroup_parent);
    std::fs::read_to_string(f).unwrap_or_default().trim().to_string()
}

/// `PS_CALLS` listings from 5 clients at once; returns when every one is answered.
fn ps_calls(d: &Daemon, expect: &[String]) {
    let answered = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..5 {
            s.spawn(|| {
                for _ in 0..PS_CALLS / 5 {
                    let (status, body) = d.api("GET", "/containers/json?all=1", b"");
                    assert_eq!(status, 200, "{body}");
                    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
                    for id in expect {
                        assert!(list.as_array().unwrap().iter().any(|c| c["Id"] == id.as_str()), "{id} in {body}");
                    }
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(answered.load(Ordering::SeqCst), PS_CALLS);
}

fn id_of(d: &Daemon, name: &str) -> String {
    d.berth(&["inspect", "-f", "{{.Id}}", name]).ok().trim().to_string()
}

#[test]
fn ps_is_answered_while_pauses_wait_for_the_freezer() {
    let d = Daemon::with_busybox();
    let mnt = d.dir.path().join("gate");
    std::fs::create_dir(&mnt).unwrap();
    let gate = Gate::mount(&mnt);
    let vol = format!("{}:/f", mnt.display());
    let mut ids = Vec::new();
    for i in 0..SLOW {
        let name = berth_integration::unique("slowpause");
        d.berth(&["run", "-d", "--name", &name, "--network", "none", "-v", &vol, "busybox", "sleep", "1d"]).ok();
        ids.push(id_of(&d, &name));
        // The container's process then sleeps in the kernel until the gate answers.
        d.berth(&["exec", "-d", &name, "stat", &format!("/f/slow{i}")]).ok();
    }
    let mut held = Vec::new();
    for _ in 0..SLOW {
        let h = gate.next_held();
        assert!(h.is_lookup() && h.name.starts_with("slow"), "{h:?}");
        held.push(h);
    }
    // Control: nothing is frozen before the pauses.
    for id in &ids {
        assert_eq!(freezer_state(&d, id), "THAWED");
    }
    let paused = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let pauses: Vec<_> = ids
            .iter()
            .map(|id| {
                let (d, paused) = (&d, &paused);
                s.spawn(move || {
                    let r = d.api("POST", &format!("/containers/{id}/pause"), b"");
                    paused.fetch_add(1, Ordering::SeqCst);
                    r
                })
            })
            .collect();
        // Each pause is in progress: the daemon asked the kernel to freeze, and the task
        // asleep in the gate keeps the group from settling.
        for id in &ids {
            wait_until("the group is FREEZING", || freezer_state(&d, id) == "FREEZING");
        }
        ps_calls(&d, &ids);
        assert_eq!(paused.load(Ordering::SeqCst), 0, "a pause answered before the listings were all answered");
        for id in &ids {
            assert_eq!(freezer_state(&d, id), "FREEZING", "the pause of {id} is still in progress");
        }
        // Let the sleeping tasks go: their groups freeze and the pauses finish.
        for h in &held {
            gate.answer_missing(h);
        }
        for p in pauses {
            let (status, body) = p.join().unwrap();
            assert_eq!(status, 204, "{body}");
        }
    });
    for id in &ids {
        assert_eq!(freezer_state(&d, id), "FROZEN");
        assert_eq!(d.berth(&["inspect", "-f", "{{.State.Status}}", id]).ok().trim(), "paused");
        d.berth(&["unpause", id]).ok();
        d.berth(&["rm", "-f", id]).ok();
    }
    drop(gate);
}

#[test]
fn ps_is_answered_while_removals_delete_large_writable_layers() {
    let d = Daemon::with_busybox();
    let mut ids = Vec::new();
    for i in 0..SLOW {
        let name = berth_integration::unique("slowrm");
        // The first holds 200k files; each has a directory the gate is mounted on below.
        let script =
            if i == 0 { "mkdir /t && cd /t && seq 1 200000 | xargs touch && mkdir /gate" } else { "mkdir /gate" };
        d.berth(&["run", "--name", &name, "--network", "none", "busybox", "sh", "-c", script]).ok();
        ids.push(id_of(&d, &name));
    }
    let uppers: Vec<std::path::PathBuf> = ids
        .iter()
        .map(|id| d.berth(&["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", id]).ok().trim().into())
        .collect();
    // Control: the big tree is in the first writable layer.
    assert_eq!(std::fs::read_dir(uppers[0].join("t")).unwrap().count(), 200_000);
    let mut gates: Vec<Gate> = uppers.iter().map(|u| Gate::mount(&u.join("gate"))).collect();
    let removed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let rms: Vec<_> = ids
            .iter()
            .map(|id| {
                let (d, removed) = (&d, &removed);
                s.spawn(move || {
                    let r = d.api("DELETE", &format!("/containers/{id}"), b"");
                    removed.fetch_add(1, Ordering::SeqCst);
                    r
                })
            })
            .collect();
        // Each deletion is in progress: it has reached its gate and waits for the answer.
        let held: Vec<_> = gates.iter().map(|g| g.next_held()).collect();
        for h in &held {
            assert!(h.is_opendir(), "{h:?}");
        }
        ps_calls(&d, &ids);
        assert_eq!(removed.load(Ordering::SeqCst), 0, "a removal answered before the listings were all answered");
        // Let the deletions go on: each gate is unmounted (so its directory can go), then
        // its open directory answered (empty).
        for (g, h) in gates.iter_mut().zip(&held) {
            g.detach();
            g.answer_opened(h);
        }
        for r in rms {
            let (status, body) = r.join().unwrap();
            assert_eq!(status, 204, "{body}");
        }
    });
    for (id, upper) in ids.iter().zip(&uppers) {
        assert!(!upper.exists(), "{} is left", upper.display());
        assert_ne!(d.berth(&["inspect", id]).code, 0, "{id} is gone");
    }
    drop(gates);
}
