//! Skeletons: everything in a layer tar but its file contents, for byte-exact reassembly.
//!
//! A skeleton is a list of segments: raw bytes to emit as they are, and file references whose
//! bytes come from the unpacked layer. Encoded compactly and zlib-compressed, it is typically
//! a few hundred bytes per file before compression and a fraction of that after.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::OFlags;

use crate::paths::open_regular_in_root;
use crate::{ArchiveError, Result, errno};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Raw(Vec<u8>),
    File { path: String, size: u64 },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skeleton {
    pub segments: Vec<Segment>,
}

const MAGIC: &[u8; 8] = b"BRTHSKL1";

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn get_varint(data: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = *data.get(*pos).ok_or_else(|| ArchiveError::Corrupt("skeleton truncated".into()))?;
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
        if shift > 63 {
            return Err(ArchiveError::Corrupt("skeleton varint overflow".into()));
        }
    }
}

impl Skeleton {
    pub fn push_raw(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        if let Some(Segment::Raw(last)) = self.segments.last_mut() {
            last.extend_from_slice(&bytes);
        } else {
            self.segments.push(Segment::Raw(bytes));
        }
    }

    pub fn push_file(&mut self, path: String, size: u64) {
        self.segments.push(Segment::File { path, size });
    }

    /// Size in bytes of the tar this skeleton reassembles.
    pub fn tar_size(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Raw(b) => b.len() as u64,
                Segment::File { size, .. } => *size,
            })
            .sum()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for s in &self.segments {
            match s {
                Segment::Raw(b) => {
                    body.push(b'R');
                    put_varint(&mut body, b.len() as u64);
                    body.extend_from_slice(b);
                }
                Segment::File { path, size } => {
                    body.push(b'F');
                    put_varint(&mut body, path.len() as u64);
                    body.extend_from_slice(path.as_bytes());
                    put_varint(&mut body, *size);
                }
            }
        }
        let mut out = MAGIC.to_vec();
        let mut enc = flate2::write::ZlibEncoder::new(&mut out, flate2::Compression::fast());
        // Writing into a Vec cannot fail.
        let _ = enc.write_all(&body);
        let _ = enc.finish();
        out
    }

    pub fn decode(data: &[u8]) -> Result<Skeleton> {
        if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
            return Err(ArchiveError::Corrupt("not a layer skeleton".into()));
        }
        let mut body = Vec::new();
        flate2::read::ZlibDecoder::new(&data[MAGIC.len()..])
            .read_to_end(&mut body)
            .map_err(|e| ArchiveError::Corrupt(format!("layer skeleton: {e}")))?;
        let mut pos = 0;
        let mut sk = Skeleton::default();
        while pos < body.len() {
            let tag = body[pos];
            pos += 1;
            let len = get_varint(&body, &mut pos)? as usize;
            let bytes = pos
                .checked_add(len)
                .and_then(|end| body.get(pos..end))
                .ok_or_else(|| ArchiveError::Corrupt("skeleton truncated".into()))?
                .to_vec();
            pos += len;
            match tag {
                b'R' => sk.segments.push(Segment::Raw(bytes)),
                b'F' => {
                    let size = get_varint(&body, &mut pos)?;
                    let path = String::from_utf8(bytes).map_err(|_| ArchiveError::Corrupt("skeleton path".into()))?;
                    sk.segments.push(Segment::File { path, size });
                }
                _ => return Err(ArchiveError::Corrupt("bad skeleton segment".into())),
            }
        }
        Ok(sk)
    }

    /// Writes the original tar stream, reading file contents from the unpacked layer at
    /// `root`. Fails if a file is missing or has changed size, since the result could not
    /// match the layer's digest.
    pub fn write_tar(&self, root: &Path, out: &mut dyn Write) -> Result<u64> {
        let root_fd =
            rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, rustix::fs::Mode::empty())
                .map_err(|e| errno(format!("opening layer {}", root.display()), e))?;
        let mut total = 0u64;
        // Large files are read in large pieces: `io::copy`'s 8 KiB meant 25,000 reads (and
        // as many writes into `out`) for a 200 MiB layer.
        let mut buf = Vec::new();
        for s in &self.segments {
            match s {
                Segment::Raw(b) => {
                    out.write_all(b).map_err(|e| ArchiveError::io("writing layer", e))?;
                    total += b.len() as u64;
                }
                Segment::File { path, size } => {
                    let fd = open_regular_in_root(root_fd.as_fd(), path)
                        .map_err(|e| errno(format!("layer file {path}"), e))?
                        .ok_or_else(|| ArchiveError::Corrupt(format!("layer file {path} is not a regular file")))?;
                    let n = copy_file(&mut buf, &mut std::fs::File::from(fd), *size, out)
                        .map_err(|e| ArchiveError::io(format!("reading layer file {path}"), e))?;
                    if n != *size {
                        return Err(ArchiveError::Corrupt(format!(
                            "layer file {path} has {n} bytes, expected {size}: the stored layer is damaged"
                        )));
                    }
                    total += n;
                }
            }
        }
        Ok(total)
    }
}

/// The most of a file read at once.
const COPY_BUF: usize = 1 << 20;

/// Copies up to `size` bytes of `f` to `w` through `buf`, which grows (up to [`COPY_BUF`])
/// to the largest file copied so far; returns how many there were.
fn copy_file(buf: &mut Vec<u8>, f: &mut impl io::Read, size: u64, w: &mut dyn Write) -> io::Result<u64> {
    let want = size.min(COPY_BUF as u64) as usize;
    if buf.len() < want {
        buf.resize(want, 0);
    }
    let mut n = 0u64;
    while n < size {
        let room = buf.len().min((size - n) as usize);
        let k = match f.read(&mut buf[..room]) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..k])?;
        n += k as u64;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_round_trip() {
        let mut s = Skeleton::default();
        s.push_raw(vec![1, 2, 3]);
        s.push_raw(vec![4]);
        s.push_file("etc/passwd".into(), 300);
        s.push_raw(vec![0; 1000]);
        assert_eq!(s.segments.len(), 3);
        assert_eq!(s.tar_size(), 1304);
        let back = Skeleton::decode(&s.encode()).unwrap();
        assert_eq!(back, s);
        assert!(Skeleton::decode(b"junk").is_err());
    }

    #[test]
    fn writes_files_larger_than_one_read_byte_for_byte_and_refuses_a_shrunk_one() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..(5u32 << 19) + 3).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("big"), &big).unwrap();
        std::fs::write(dir.path().join("small"), b"hello").unwrap();
        let mut s = Skeleton::default();
        s.push_raw(b"<header big>".to_vec());
        s.push_file("big".into(), big.len() as u64);
        s.push_raw(b"<header small>".to_vec());
        s.push_file("small".into(), 5);
        let mut out = Vec::new();
        assert_eq!(s.write_tar(dir.path(), &mut out).unwrap(), out.len() as u64);
        let mut want = b"<header big>".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"<header small>hello");
        assert!(out == want, "the stream differs from the original");

        std::fs::write(dir.path().join("big"), &big[..1 << 20]).unwrap();
        let err = s.write_tar(dir.path(), &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("layer file big has 1048576 bytes, expected 2621443"), "{err}");
    }

    /// fuzz/regressions/layer_skeleton: a length near u64::MAX overflowed `pos + len`.
    #[test]
    fn a_huge_length_is_corrupt_not_a_panic() {
        let body = [
            0x52, 0x05, 0x52, 0x05, 0x68, 0x27, 0x65, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00,
            0x52, 0x52, 0x52, 0x52,
        ];
        let mut data = MAGIC.to_vec();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut z, &body).unwrap();
        data.extend(z.finish().unwrap());
        assert!(matches!(Skeleton::decode(&data), Err(ArchiveError::Corrupt(_))));
    }
}
