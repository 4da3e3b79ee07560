//! fsutil's file transfer as the daemon receives a build context from a client
//! (`berth_buildkit::fsutil::receive`): the client's packets (stats, data, errors, FIN)
//! over a real gRPC stream, into a directory that may hold an earlier transfer's tree.
//!
//! Input: packets, each a two-byte length and that many bytes of a protobuf `Packet`
//! (ones that do not decode are skipped).
//! Checks: nothing panics or hangs; confinement: the sandbox around the destination (a
//! sibling directory with a canary file, and a symlink inside the destination pointing
//! to it, as a malicious earlier transfer would leave) is exactly as it was.
//!
//! The sandbox is `$TMPDIR/berth-fuzz-fsutil.<pid>/{dest,outside/canary}`, made anew per
//! input.
#![no_main]

use std::path::PathBuf;

use berth_buildkit::fsutil::receive;
use berth_buildkit::grpc::{Call, Channel, serve};
use berth_buildkit::proto::Packet;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn packets(mut data: &[u8]) -> Vec<Packet> {
    let mut out = Vec::new();
    while let [a, b, rest @ ..] = data {
        let n = (u16::from_be_bytes([*a, *b]) as usize).min(rest.len());
        if let Ok(p) = Packet::decode(&rest[..n]) {
            out.push(p);
        }
        data = &rest[n..];
    }
    out
}

/// What is outside the destination, as a listing of paths and contents.
fn outside(base: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = base.join("outside");
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let c = std::fs::read(&p).unwrap_or_default();
            (p, c)
        })
        .collect();
    v.sort();
    v
}

fuzz_target!(|data: &[u8]| {
    let packets = packets(data);
    if packets.is_empty() {
        return;
    }
    let base = std::env::temp_dir().join(format!("berth-fuzz-fsutil.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(base.join("dest/sub")).unwrap();
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(base.join("outside/canary"), b"canary").unwrap();
    std::fs::write(base.join("dest/sub/old"), b"from before").unwrap();
    std::os::unix::fs::symlink(base.join("outside"), base.join("dest/link")).unwrap();
    let before = outside(&base);

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dest = base.join("dest");
    rt.block_on(async move {
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(serve(a, move |call: Call| {
            let packets = packets.clone();
            async move {
                let Ok((mut tx, _rx)) = call.split() else { return };
                for p in &packets {
                    if tx.send(p).await.is_err() {
                        return;
                    }
                }
                tx.finish(Ok(()));
            }
        }));
        let (ch, _) = Channel::connect(b).await.unwrap();
        let (mut tx, mut rx) = ch.call("/moby.filesync.v1.FileSync/DiffCopy", &[]).await.unwrap();
        let _ = receive(&mut tx, &mut rx, &dest).await;
    });
    assert_eq!(outside(&base), before, "the transfer changed something outside its destination");
    assert!(std::fs::symlink_metadata(base.join("outside")).unwrap().is_dir());
});
