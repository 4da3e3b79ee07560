//! fsutil's file transfer (tonistiigi/fsutil `send.go`/`receive.go`), as BuildKit uses it
//! to read a client's local directories (`FileSync.DiffCopy`) and to write exported files
//! back (`FileSend.DiffCopy`).
//!
//! The sender walks its tree in lexical order (a directory before its children, names
//! sorted bytewise within each directory) and sends one STAT packet per entry, then an
//! empty STAT. Every entry takes the next ID, counting from 0, whatever its type. The
//! receiver asks for the content of regular files with REQ(ID); the sender answers with
//! DATA(ID) packets and an empty DATA(ID) at the end of each file, files interleaved. The
//! receiver ends with FIN, which the sender echoes. Either side may send ERR with a text.
//! Modes are Go's `os.FileMode`: permissions in the low bits, the type in the high ones.
//! A regular file with a `linkname` is a hard link to an earlier path.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::grpc::{Error, Incoming, Outgoing, Result};
use crate::proto::{Packet, PacketType, Stat};

/// Go's `os.FileMode` bits.
pub mod mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
    pub const IRREGULAR: u32 = 1 << 19;
    pub const TYPE: u32 = DIR | SYMLINK | NAMED_PIPE | SOCKET | DEVICE | CHAR_DEVICE | IRREGULAR;

    /// A unix `st_mode` as Go's `FileMode`.
    pub fn from_unix(m: u32) -> u32 {
        let mut g = m & 0o777;
        match m & libc_s::IFMT {
            libc_s::IFDIR => g |= DIR,
            libc_s::IFLNK => g |= SYMLINK,
            libc_s::IFIFO => g |= NAMED_PIPE,
            libc_s::IFSOCK => g |= SOCKET,
            libc_s::IFCHR => g |= DEVICE | CHAR_DEVICE,
            libc_s::IFBLK => g |= DEVICE,
            _ => {}
        }
        if m & 0o4000 != 0 {
            g |= SETUID;
        }
        if m & 0o2000 != 0 {
            g |= SETGID;
        }
        if m & 0o1000 != 0 {
            g |= STICKY;
        }
        g
    }

    /// The unix permission bits (with setuid, setgid, sticky) of a Go `FileMode`.
    pub fn permissions(g: u32) -> u32 {
        let mut m = g & 0o777;
        if g & SETUID != 0 {
            m |= 0o4000;
        }
        if g & SETGID != 0 {
            m |= 0o2000;
        }
        if g & STICKY != 0 {
            m |= 0o1000;
        }
        m
    }

    mod libc_s {
        pub const IFMT: u32 = 0o170000;
        pub const IFDIR: u32 = 0o040000;
        pub const IFLNK: u32 = 0o120000;
        pub const IFIFO: u32 = 0o010000;
        pub const IFSOCK: u32 = 0o140000;
        pub const IFCHR: u32 = 0o020000;
        pub const IFBLK: u32 = 0o060000;
    }
}

fn packet(t: PacketType) -> Packet {
    Packet { r#type: t as i32, ..Default::default() }
}

/// A path from the peer, checked to stay inside the destination.
fn confined(dest: &Path, rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    if rel.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(Error::Protocol(format!("invalid path in file transfer: {rel:?}")));
    }
    Ok(dest.join(p))
}

fn io(what: &str, e: std::io::Error) -> Error {
    Error::Protocol(format!("{what}: {e}"))
}

/// What [`receive`] did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Received {
    /// Entries the sender listed.
    pub entries: u64,
    /// Content bytes transferred (unchanged files cost none).
    pub bytes: u64,
    /// Regular files whose content was asked for.
    pub files_sent: u64,
}

/// Whether the file already at `host` is the one `st` describes (BuildKit's test: type,
/// permissions, size and modification time; content is not read).
fn unchanged(host: &Path, st: &Stat) -> bool {
    let Ok(m) = std::fs::symlink_metadata(host) else { return false };
    let mtime = m.mtime().saturating_mul(1_000_000_000).saturating_add(m.mtime_nsec());
    m.is_file() && m.size() as i64 == st.size && mtime == st.mod_time && m.mode() & 0o7777 == mode::permissions(st.mode)
}

/// Removes whatever is at `host` (a file, link or whole directory).
async fn remove_any(host: &Path) -> Result<()> {
    match tokio::fs::symlink_metadata(host).await {
        Ok(m) if m.is_dir() => tokio::fs::remove_dir_all(host).await.map_err(|e| io("replacing a directory", e)),
        Ok(_) => tokio::fs::remove_file(host).await.map_err(|e| io("replacing a file", e)),
        Err(_) => Ok(()),
    }
}

/// The parent of `rel` ("" for the top).
fn parent_of(rel: &str) -> &str {
    rel.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

/// Receives the sender's tree into `dest`, which may hold the tree of an earlier transfer:
/// files that are unchanged (see [`unchanged`]) are kept without asking for their content,
/// and whatever the sender no longer lists is removed. Ownership is not applied: the build
/// context is read as root's, as the classic builder unpacks it.
///
/// Nothing outside `dest` is written: paths must be relative and plain, each is listed once,
/// and an entry is accepted only inside a directory the sender listed before it (as
/// fsutil's walk always does), so a symlink, from this transfer or an earlier one, is never
/// followed.
pub async fn receive(tx: &mut Outgoing, rx: &mut Incoming, dest: &Path) -> Result<Received> {
    let mut id: u32 = 0;
    let mut pending: HashMap<u32, (tokio::fs::File, i64)> = HashMap::new();
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    // Relative paths listed in this transfer: directories (real ones, checked or made) and
    // regular files (hard link targets).
    let mut dirs: HashSet<String> = HashSet::from([String::new()]);
    let mut listed: HashSet<String> = HashSet::new();
    let mut files: HashSet<String> = HashSet::new();
    let mut done = Received::default();
    let mut walk_done = false;
    loop {
        let Some(p) = rx.message::<Packet>().await? else {
            return Err(Error::Protocol("the file transfer ended early".into()));
        };
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::Stat) => {
                let Some(st) = p.stat else {
                    walk_done = true;
                    if pending.is_empty() {
                        break;
                    }
                    continue;
                };
                let this = id;
                id += 1;
                done.entries += 1;
                let path = confined(dest, &st.path)?;
                if !dirs.contains(parent_of(&st.path)) {
                    return Err(Error::Protocol(format!("{:?} is not inside a directory sent before it", st.path)));
                }
                // Listed once only: a directory listed again as a symlink would stay in
                // `dirs`, and what follows would be written through the link.
                if !listed.insert(st.path.clone()) {
                    return Err(Error::Protocol(format!("{:?} was sent twice", st.path)));
                }
                let perm = mode::permissions(st.mode);
                if st.mode & mode::DIR != 0 {
                    let is_dir = tokio::fs::symlink_metadata(&path).await.is_ok_and(|m| m.is_dir());
                    if !is_dir {
                        remove_any(&path).await?;
                        tokio::fs::create_dir(&path).await.map_err(|e| io("creating a directory", e))?;
                    }
                    let _ = tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(perm)).await;
                    dirs.insert(st.path.clone());
                } else if st.mode & mode::SYMLINK != 0 {
                    let same = tokio::fs::read_link(&path).await.is_ok_and(|t| t == Path::new(&st.linkname));
                    if !same {
                        remove_any(&path).await?;
                        tokio::fs::symlink(&st.linkname, &path).await.map_err(|e| io("creating a symlink", e))?;
                    }
                } else if st.mode & mode::TYPE == 0 {
                    if !st.linkname.is_empty() {
                        if !files.contains(&st.linkname) {
                            return Err(Error::Protocol(format!(
                                "hard link to {:?}, not a file sent before",
                                st.linkname
                            )));
                        }
                        remove_any(&path).await?;
                        links.push((confined(dest, &st.linkname)?, path));
                        continue;
                    }
                    files.insert(st.path.clone());
                    if unchanged(&path, &st) {
                        continue;
                    }
                    remove_any(&path).await?;
                    let f = tokio::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(perm)
                        .open(&path)
                        .await
                        .map_err(|e| io("creating a file", e))?;
                    // The mode again: the umask narrowed it at creation.
                    let _ = f.set_permissions(std::fs::Permissions::from_mode(perm)).await;
                    pending.insert(this, (f, st.mod_time));
                    done.files_sent += 1;
                    tx.send(&Packet { id: this, ..packet(PacketType::Req) }).await?;
                } else {
                    // Devices, pipes and sockets are not part of a build context.
                    remove_any(&path).await?;
                }
            }
            Ok(PacketType::Data) => {
                if p.data.is_empty() {
                    if let Some((mut f, mtime)) = pending.remove(&p.id) {
                        f.flush().await.map_err(|e| io("writing a file", e))?;
                        let f = f.into_std().await;
                        let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(mtime.max(0) as u64);
                        let _ = f.set_times(std::fs::FileTimes::new().set_modified(t));
                    }
                    if walk_done && pending.is_empty() {
                        break;
                    }
                } else if let Some((f, _)) = pending.get_mut(&p.id) {
                    done.bytes += p.data.len() as u64;
                    f.write_all(&p.data).await.map_err(|e| io("writing a file", e))?;
                } else {
                    return Err(Error::Protocol(format!("data for a file not asked for ({})", p.id)));
                }
            }
            Ok(PacketType::Err) => {
                return Err(Error::Protocol(format!("error from sender: {}", String::from_utf8_lossy(&p.data))));
            }
            Ok(PacketType::Fin) => break,
            _ => {}
        }
    }
    for (target, link) in links {
        tokio::fs::hard_link(&target, &link).await.map_err(|e| io("creating a hard link", e))?;
    }
    tx.send(&packet(PacketType::Fin)).await?;
    // The sender echoes FIN and ends the call.
    while let Some(p) = rx.message::<Packet>().await? {
        if p.r#type == PacketType::Fin as i32 {
            break;
        }
    }
    let dest = dest.to_path_buf();
    tokio::task::spawn_blocking(move || remove_unlisted(&dest, "", &listed))
        .await
        .map_err(|e| Error::Protocol(e.to_string()))?
        .map_err(|e| io("removing what the sender no longer has", e))?;
    Ok(done)
}

/// Removes entries under `dest` that the transfer did not list (never following links).
fn remove_unlisted(dest: &Path, rel: &str, listed: &HashSet<String>) -> std::io::Result<()> {
    let dir = if rel.is_empty() { dest.to_path_buf() } else { dest.join(rel) };
    for e in std::fs::read_dir(&dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let is_dir = e.file_type()?.is_dir();
        if !listed.contains(&r) {
            if is_dir { std::fs::remove_dir_all(e.path())? } else { std::fs::remove_file(e.path())? }
        } else if is_dir {
            remove_unlisted(dest, &r, listed)?;
        }
    }
    Ok(())
}

/// One entry of a tree to send: its stat (path relative, `/`-separated) and, for a regular
/// file, where its bytes are.
#[derive(Debug, Clone)]
pub struct Entry {
    pub stat: Stat,
    pub source: Option<PathBuf>,
}

/// A `Stat` for `rel` from the metadata of the file that has its bytes.
pub fn stat_of(rel: &str, m: &std::fs::Metadata, linkname: String) -> Stat {
    let modified = m.mtime().saturating_mul(1_000_000_000).saturating_add(m.mtime_nsec());
    Stat {
        path: rel.to_string(),
        mode: mode::from_unix(m.mode()),
        uid: m.uid(),
        gid: m.gid(),
        size: if m.is_file() { m.size() as i64 } else { 0 },
        mod_time: modified,
        linkname,
        ..Default::default()
    }
}

/// Sends `entries` (in the walk order described above) to a receiver.
pub async fn send(tx: &mut Outgoing, mut rx: Incoming, entries: Vec<Entry>) -> Result<()> {
    // The receiver's requests are read as they come, so its sends never wait for ours.
    let (req_tx, mut reqs) = mpsc::unbounded_channel::<Result<Packet>>();
    let reader = tokio::spawn(async move {
        loop {
            let m = rx.message::<Packet>().await;
            let end = !matches!(m, Ok(Some(_)));
            let _ = req_tx.send(m.and_then(|p| p.ok_or_else(|| Error::Protocol("the receiver went away".into()))));
            if end {
                break;
            }
        }
    });
    let mut sources: HashMap<u32, PathBuf> = HashMap::new();
    for (i, e) in entries.into_iter().enumerate() {
        if let Some(s) = e.source {
            sources.insert(i as u32, s);
        }
        tx.send(&Packet { stat: Some(e.stat), ..packet(PacketType::Stat) }).await?;
    }
    tx.send(&packet(PacketType::Stat)).await?;
    let result = async {
        while let Some(p) = reqs.recv().await {
            let p = p?;
            match PacketType::try_from(p.r#type) {
                Ok(PacketType::Req) => {
                    let Some(src) = sources.remove(&p.id) else {
                        return Err(Error::Protocol(format!("invalid file id {}", p.id)));
                    };
                    let mut f = tokio::fs::File::open(&src).await.map_err(|e| io("reading an exported file", e))?;
                    let mut buf = vec![0u8; 32 << 10];
                    loop {
                        let n = f.read(&mut buf).await.map_err(|e| io("reading an exported file", e))?;
                        if n == 0 {
                            break;
                        }
                        tx.send(&Packet { id: p.id, data: buf[..n].to_vec(), ..packet(PacketType::Data) }).await?;
                    }
                    tx.send(&Packet { id: p.id, ..packet(PacketType::Data) }).await?;
                }
                Ok(PacketType::Fin) => {
                    tx.send(&packet(PacketType::Fin)).await?;
                    return Ok(());
                }
                Ok(PacketType::Err) => {
                    return Err(Error::Protocol(format!("error from receiver: {}", String::from_utf8_lossy(&p.data))));
                }
                _ => {}
            }
        }
        Err(Error::Protocol("the receiver went away before FIN".into()))
    }
    .await;
    reader.abort();
    result
}

/// The entries of directory `root` in fsutil's walk order (for tests and plain directories).
pub fn walk_dir(root: &Path) -> std::io::Result<Vec<Entry>> {
    fn go(root: &Path, rel: &str, out: &mut Vec<Entry>) -> std::io::Result<()> {
        let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
        let mut names: Vec<_> =
            std::fs::read_dir(&dir)?.map(|e| e.map(|e| e.file_name())).collect::<std::io::Result<_>>()?;
        names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        for n in names {
            let name = n.to_string_lossy();
            let r = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
            let host = root.join(&r);
            let m = std::fs::symlink_metadata(&host)?;
            let link = if m.file_type().is_symlink() {
                std::fs::read_link(&host)?.to_string_lossy().into_owned()
            } else {
                String::new()
            };
            out.push(Entry { stat: stat_of(&r, &m, link), source: m.is_file().then(|| host.clone()) });
            if m.is_dir() {
                go(root, &r, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    go(root, "", &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::{Call, Channel, serve};

    #[test]
    fn go_file_modes() {
        assert_eq!(mode::from_unix(0o040755), mode::DIR | 0o755);
        assert_eq!(mode::from_unix(0o100644), 0o644);
        assert_eq!(mode::from_unix(0o104755), mode::SETUID | 0o755);
        assert_eq!(mode::permissions(mode::SETUID | 0o755), 0o4755);
    }

    #[tokio::test]
    async fn a_tree_goes_across() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("a/b")).unwrap();
        std::fs::write(src.path().join("a/b/big"), vec![9u8; 300_000]).unwrap();
        std::fs::write(src.path().join("a.txt"), b"hello").unwrap();
        std::fs::write(src.path().join("empty"), b"").unwrap();
        std::os::unix::fs::symlink("a.txt", src.path().join("link")).unwrap();
        let entries = walk_dir(src.path()).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.stat.path.clone()).collect();
        assert_eq!(names, ["a", "a/b", "a/b/big", "a.txt", "empty", "link"]);

        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(serve(a, move |call: Call| {
            let entries = entries.clone();
            async move {
                let (mut tx, rx) = call.split().unwrap();
                let r = send(&mut tx, rx, entries).await;
                tx.finish(r);
            }
        }));
        let (ch, _) = Channel::connect(b).await.unwrap();
        let dest = tempfile::tempdir().unwrap();
        let (mut tx, mut rx) = ch.call("/moby.filesync.v1.FileSync/DiffCopy", &[]).await.unwrap();
        let got = receive(&mut tx, &mut rx, dest.path()).await.unwrap();
        let _ = tx.close();
        assert_eq!(got.entries, 6);
        assert_eq!(std::fs::read(dest.path().join("a/b/big")).unwrap(), vec![9u8; 300_000]);
        assert_eq!(std::fs::read(dest.path().join("a.txt")).unwrap(), b"hello");
        assert_eq!(std::fs::read(dest.path().join("empty")).unwrap(), b"");
        assert_eq!(std::fs::read_link(dest.path().join("link")).unwrap(), Path::new("a.txt"));
    }

    /// Serves `entries` (stats, then content for what is asked) as a sender would.
    async fn transfer(entries: Vec<Entry>, dest: &Path) -> Result<Received> {
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(serve(a, move |call: Call| {
            let entries = entries.clone();
            async move {
                let (mut tx, rx) = call.split().unwrap();
                let r = send(&mut tx, rx, entries).await;
                tx.finish(r);
            }
        }));
        let (ch, _) = Channel::connect(b).await.unwrap();
        let (mut tx, mut rx) = ch.call("/moby.filesync.v1.FileSync/DiffCopy", &[]).await.unwrap();
        let r = receive(&mut tx, &mut rx, dest).await;
        let _ = tx.close();
        r
    }

    #[tokio::test]
    async fn a_second_transfer_sends_only_what_changed_and_removes_what_is_gone() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("d")).unwrap();
        std::fs::write(src.path().join("d/same"), vec![1u8; 1000]).unwrap();
        std::fs::write(src.path().join("d/edit"), b"one").unwrap();
        std::fs::write(src.path().join("gone"), b"bye").unwrap();
        let dest = tempfile::tempdir().unwrap();
        let first = transfer(walk_dir(src.path()).unwrap(), dest.path()).await.unwrap();
        assert_eq!((first.files_sent, first.bytes), (3, 1006));

        std::fs::write(src.path().join("d/edit"), b"two!").unwrap();
        std::fs::remove_file(src.path().join("gone")).unwrap();
        std::fs::create_dir(src.path().join("gone")).unwrap();
        std::fs::write(src.path().join("gone/new"), b"n").unwrap();
        let second = transfer(walk_dir(src.path()).unwrap(), dest.path()).await.unwrap();
        assert_eq!((second.files_sent, second.bytes), (2, 5));
        assert_eq!(std::fs::read(dest.path().join("d/edit")).unwrap(), b"two!");
        assert_eq!(std::fs::read(dest.path().join("gone/new")).unwrap(), b"n");

        std::fs::remove_dir_all(src.path().join("d")).unwrap();
        let third = transfer(walk_dir(src.path()).unwrap(), dest.path()).await.unwrap();
        assert_eq!(third.files_sent, 0);
        assert!(!dest.path().join("d").exists());
    }

    /// A sender that lists a symlink to the outside and then a file "inside" it: the file
    /// must not land outside. Control: the same file under a real directory arrives.
    #[tokio::test]
    async fn a_file_under_a_symlink_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("x"), b"evil").unwrap();
        let meta = std::fs::metadata(src.path().join("x")).unwrap();
        let dmeta = std::fs::metadata(src.path()).unwrap();
        let link = Entry {
            stat: Stat {
                path: "evil".into(),
                mode: mode::SYMLINK | 0o777,
                linkname: outside.path().display().to_string(),
                ..Default::default()
            },
            source: None,
        };
        let file = |p: &str| Entry { stat: stat_of(p, &meta, String::new()), source: Some(src.path().join("x")) };
        let dest = tempfile::tempdir().unwrap();
        let r = transfer(vec![link, file("evil/x")], dest.path()).await;
        assert!(r.is_err(), "{r:?}");
        assert!(!outside.path().join("x").exists());
        let dir = Entry { stat: stat_of("real", &dmeta, String::new()), source: None };
        let dest = tempfile::tempdir().unwrap();
        transfer(vec![dir, file("real/x")], dest.path()).await.unwrap();
        assert_eq!(std::fs::read(dest.path().join("real/x")).unwrap(), b"evil");
    }

    /// A directory listed again as a symlink, then a file under it: refused, and nothing
    /// is written through the link.
    #[tokio::test]
    async fn a_directory_listed_again_as_a_symlink_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("x"), b"evil").unwrap();
        let meta = std::fs::metadata(src.path().join("x")).unwrap();
        let dmeta = std::fs::metadata(src.path()).unwrap();
        let dir = Entry { stat: stat_of("a", &dmeta, String::new()), source: None };
        let link = Entry {
            stat: Stat {
                path: "a".into(),
                mode: mode::SYMLINK | 0o777,
                linkname: outside.path().display().to_string(),
                ..Default::default()
            },
            source: None,
        };
        let file = Entry { stat: stat_of("a/x", &meta, String::new()), source: Some(src.path().join("x")) };
        let dest = tempfile::tempdir().unwrap();
        let r = transfer(vec![dir, link, file], dest.path()).await;
        assert!(r.is_err_and(|e| e.to_string().contains("sent twice")));
        assert!(!outside.path().join("x").exists());
    }

    #[tokio::test]
    async fn a_path_out_of_the_destination_is_refused() {
        let dest = tempfile::tempdir().unwrap();
        assert!(confined(dest.path(), "../x").is_err());
        assert!(confined(dest.path(), "/etc/passwd").is_err());
        assert!(confined(dest.path(), "a/../../x").is_err());
        assert!(confined(dest.path(), "a/b").is_ok());
    }
}
