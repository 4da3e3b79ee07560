//! Resolving `--user name[:group]` against the container's own /etc/passwd and /etc/group,
//! as Docker does, and the environment defaults that come with a user.

use std::os::fd::AsFd;

use rustix::fs::OFlags;

use crate::paths::open_in_root;
use crate::{Result, RuntimeError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The user's home directory from /etc/passwd (`/` when unknown).
    pub home: String,
}

/// The most of /etc/passwd or /etc/group read: far beyond any real one.
const MAX_DB: u64 = 4 << 20;

/// The longest user or group name a tar header's uname/gname field holds.
const TAR_NAME_MAX: usize = 32;

/// Reads a user database inside the container's root; empty when it is missing or is not
/// a plain file of at most [`MAX_DB`]. The container owns these files and the shim and the
/// daemon read them from the host (every exec and healthcheck as a named user, `docker cp
/// -a`): what is there is looked at through an `O_PATH` descriptor and opened only if it is
/// a plain file, since opening a device node from the host acts on the host's device outside
/// the container's device cgroup (a watchdog node would start the host's watchdog), a FIFO
/// would block, and /dev/zero or a sparse 100 GB file would fill memory.
fn read_in_root(root: impl AsFd, path: &str) -> String {
    let Ok(node) = open_in_root(root, path, OFlags::PATH) else {
        return String::new();
    };
    match rustix::fs::fstat(&node) {
        Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile => {}
        _ => return String::new(),
    }
    // The descriptor pins the inode: what was checked is what is opened.
    let Ok(fd) = rustix::fs::open(
        crate::paths::fd_path(&node),
        OFlags::RDONLY | OFlags::NOCTTY | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) else {
        return String::new();
    };
    let file = std::fs::File::from(fd);
    match file.metadata() {
        Ok(m) if m.len() <= MAX_DB => {}
        _ => return String::new(),
    }
    let mut s = String::new();
    // An unreadable (or not UTF-8) database reads as empty, as a missing one does above.
    let _ = std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_DB), &mut s);
    s
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn passwd(s: &str) -> Vec<PasswdEntry> {
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry { name: f[0].into(), uid: f[2].parse().ok()?, gid: f[3].parse().ok()?, home: f[5].into() })
        })
        .collect()
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn groups(s: &str) -> Vec<GroupEntry> {
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].into(),
                gid: f[2].parse().ok()?,
                members: f[3].split(',').filter(|m| !m.is_empty()).map(String::from).collect(),
            })
        })
        .collect()
}

/// The names of user and group IDs in the container's /etc/passwd and /etc/group (the
/// first entry for an ID, as `getpwuid` answers), for tar headers' `uname` and `gname`.
/// Read as [`resolve`] reads them: confined to the root, plain files only, no NSS.
pub fn id_names(root: impl AsFd) -> (std::collections::BTreeMap<u32, String>, std::collections::BTreeMap<u32, String>) {
    let root = root.as_fd();
    // The names come from the container: one that no tar header field holds (32 bytes) would
    // become a PAX record on every entry, so it is left out and the id stays numeric.
    let fits = |n: &str| !n.is_empty() && n.len() <= TAR_NAME_MAX;
    let mut users = std::collections::BTreeMap::new();
    for e in passwd(&read_in_root(root, "/etc/passwd")).into_iter().filter(|e| fits(&e.name)) {
        users.entry(e.uid).or_insert(e.name);
    }
    let mut groups_by_id = std::collections::BTreeMap::new();
    for g in groups(&read_in_root(root, "/etc/group")).into_iter().filter(|g| fits(&g.name)) {
        groups_by_id.entry(g.gid).or_insert(g.name);
    }
    (users, groups_by_id)
}

/// A numeric uid or gid (`None` if `s` is not a number), refused outside Docker's range
/// (0 to 2^31-1) with its message.
fn numeric_id(s: &str) -> Result<Option<u32>> {
    match s.parse::<i64>() {
        Ok(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(Some(n as u32)),
        Ok(_) => Err(RuntimeError::Start("uids and gids must be in range 0-2147483647".into())),
        Err(_) => Ok(None),
    }
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`…) and the extra groups
/// (`--group-add`) inside the root `root`.
pub fn resolve(root: impl AsFd, spec: &str, group_add: &[String]) -> Result<ResolvedUser> {
    let root = root.as_fd();
    let pw = passwd(&read_in_root(root, "/etc/passwd"));
    let gr = groups(&read_in_root(root, "/etc/group"));
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let (uid, mut gid, home, name) = match pw.iter().find(|e| e.name == user) {
        Some(e) => (e.uid, e.gid, e.home.clone(), Some(e.name.clone())),
        None => match numeric_id(user)? {
            Some(uid) => match pw.iter().find(|e| e.uid == uid) {
                Some(e) => (uid, e.gid, e.home.clone(), Some(e.name.clone())),
                None => (uid, 0, "/".to_string(), None),
            },
            None => {
                return Err(RuntimeError::Start(format!(
                    "unable to find user {user}: no matching entries in passwd file"
                )));
            }
        },
    };
    if let Some(g) = group {
        gid = match gr.iter().find(|e| e.name == g) {
            Some(e) => e.gid,
            None => numeric_id(g)?.ok_or_else(|| {
                RuntimeError::Start(format!("unable to find group {g}: no matching entries in group file"))
            })?,
        };
    }
    // The primary group is among the supplementary ones, as with Docker (`id` shows
    // `groups=0(root),10(wheel)` for `--group-add wheel`).
    let mut additional: Vec<u32> = vec![gid];
    if group.is_none()
        && let Some(n) = &name
    {
        for g in &gr {
            if g.members.iter().any(|m| m == n) && !additional.contains(&g.gid) {
                additional.push(g.gid);
            }
        }
    }
    for g in group_add {
        let id = match gr.iter().find(|e| &e.name == g) {
            Some(e) => e.gid,
            None => numeric_id(g)?.ok_or_else(|| {
                RuntimeError::Start(format!("unable to find group {g}: no matching entries in group file"))
            })?,
        };
        if !additional.contains(&id) {
            additional.push(id);
        }
    }
    if home.is_empty() {
        return Ok(ResolvedUser { uid, gid, additional_gids: additional, home: "/".into() });
    }
    Ok(ResolvedUser { uid, gid, additional_gids: additional, home })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_databases_that_are_not_plain_small_files_are_not_read() {
        let d = root_with("root:x:0:0:root:/root:/bin/sh\n", "root:x:0:\n");
        let root = std::fs::File::open(d.path()).unwrap();
        assert_eq!(resolve(&root, "root", &[]).unwrap().uid, 0, "control: a plain file is read");
        // A FIFO would block the reader; /dev/zero or a huge sparse file would fill memory.
        std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
        rustix::fs::mknodat(&root, "etc/passwd", rustix::fs::FileType::Fifo, rustix::fs::Mode::from(0o644), 0).unwrap();
        assert!(resolve(&root, "root", &[]).is_err());
        std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
        let zero = rustix::fs::makedev(1, 5);
        rustix::fs::mknodat(
            &root,
            "etc/passwd",
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from(0o644),
            zero,
        )
        .unwrap();
        assert!(resolve(&root, "root", &[]).is_err());
        std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
        let big = std::fs::File::create(d.path().join("etc/passwd")).unwrap();
        big.set_len(100 << 30).unwrap();
        assert!(resolve(&root, "root", &[]).is_err());
        assert_eq!(resolve(&root, "0", &[]).unwrap().uid, 0, "a numeric user needs no database");
    }

    /// Whether anything opened `path` while `f` ran (inotify's IN_OPEN; looking at a node
    /// through an `O_PATH` descriptor opens nothing).
    fn opened_during(path: &std::path::Path, f: impl FnOnce()) -> bool {
        use rustix::fs::inotify;
        let ino = inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC).unwrap();
        inotify::add_watch(&ino, path, inotify::WatchFlags::OPEN).unwrap();
        f();
        let mut buf = [std::mem::MaybeUninit::uninit(); 1024];
        inotify::Reader::new(&ino, &mut buf).next().is_ok()
    }

    #[test]
    fn a_device_node_in_place_of_the_user_database_is_never_opened() {
        let d = root_with("root:x:0:0:root:/root:/bin/sh\n", "root:x:0:\n");
        let root = std::fs::File::open(d.path()).unwrap();
        let passwd = d.path().join("etc/passwd");
        assert!(opened_during(&passwd, || assert_eq!(resolve(&root, "root", &[]).unwrap().uid, 0)), "control");
        std::fs::remove_file(&passwd).unwrap();
        // /dev/null's numbers: harmless if the old code opens it, and seen by inotify.
        let null = rustix::fs::makedev(1, 3);
        let mode = rustix::fs::Mode::from(0o644);
        rustix::fs::mknodat(&root, "etc/passwd", rustix::fs::FileType::CharacterDevice, mode, null).unwrap();
        assert!(!opened_during(&passwd, || assert!(resolve(&root, "root", &[]).is_err())));
    }

    fn root_with(passwd: &str, group: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(d.path().join("etc/group"), group).unwrap();
        d
    }

    #[test]
    fn resolves_like_docker() {
        let d = root_with(
            "root:x:0:0:root:/root:/bin/sh\npostgres:x:70:70::/var/lib/postgresql:/bin/sh\n",
            "root:x:0:\npostgres:x:70:\nwheel:x:10:postgres\n",
        );
        let f = std::fs::File::open(d.path()).unwrap();
        let u = resolve(&f, "postgres", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (70, 70, "/var/lib/postgresql"));
        assert_eq!(u.additional_gids, vec![70, 10]);
        assert_eq!(resolve(&f, "", &[]).unwrap().uid, 0);
        let u = resolve(&f, "1000:wheel", &["postgres".into()]).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        assert_eq!(u.additional_gids, vec![10, 70]);
        assert!(resolve(&f, "nobody", &[]).unwrap_err().to_string().contains("unable to find user nobody"));
        assert!(resolve(&f, "root:nogroup", &[]).is_err());
        for bad in ["2147483648", "-1", "0:4294967296"] {
            let e = resolve(&f, bad, &[]).unwrap_err().to_string();
            assert!(e.contains("uids and gids must be in range 0-2147483647"), "{bad}: {e}");
        }
        assert_eq!(resolve(&f, "2147483647", &[]).unwrap().uid, 2147483647);
    }
}
