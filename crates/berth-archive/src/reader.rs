//! A streaming tar reader that can record every byte it reads except file contents.

use std::io::{self, BufRead, Read};

use crate::header::{self, BLOCK, EntryType, Header};
use crate::{ArchiveError, Result};

pub struct TarReader<R> {
    inner: R,
    /// Data bytes left in the current entry.
    remaining: u64,
    /// Padding after the current entry's data.
    pad: u64,
    record: bool,
    raw: Vec<u8>,
    done: bool,
}

impl<R: Read> TarReader<R> {
    /// `record` keeps the non-content bytes for [`TarReader::take_raw`] (skeletons).
    pub fn new(inner: R, record: bool) -> Self {
        TarReader { inner, remaining: 0, pad: 0, record, raw: Vec::new(), done: false }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The recorded non-content bytes since the last call.
    pub fn take_raw(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.raw)
    }

    fn read_exact_recorded(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        self.inner.read_exact(buf).map_err(|e| ArchiveError::io(format!("reading {what}"), e))?;
        if self.record {
            self.raw.extend_from_slice(buf);
        }
        Ok(())
    }

    fn skip_recorded(&mut self, mut n: u64, what: &str) -> Result<()> {
        let mut buf = [0u8; BLOCK];
        while n > 0 {
            let k = n.min(BLOCK as u64) as usize;
            self.read_exact_recorded(&mut buf[..k], what)?;
            n -= k as u64;
        }
        Ok(())
    }

    /// Reads `n` bytes of entry padding; `false` if the stream ended first.
    fn skip_padding(&mut self, n: u64) -> Result<bool> {
        let mut buf = [0u8; BLOCK];
        let want = n.min(BLOCK as u64) as usize;
        let mut got = 0;
        while got < want {
            match self.inner.read(&mut buf[got..want]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ArchiveError::io("reading entry padding", e)),
            }
        }
        if self.record {
            self.raw.extend_from_slice(&buf[..got]);
        }
        Ok(got == want)
    }

    fn read_ext_data(&mut self, size: u64, what: &str) -> Result<Vec<u8>> {
        if size > 64 << 20 {
            return Err(ArchiveError::Corrupt(format!("{what} of {size} bytes is implausibly large")));
        }
        let mut data = vec![0u8; size as usize];
        self.read_exact_recorded(&mut data, what)?;
        self.skip_recorded(header::padding(size), what)?;
        Ok(data)
    }

    /// Advances to the next entry, skipping whatever is left of the current one.
    /// Returns `None` at the end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<Header>> {
        if self.done {
            return Ok(None);
        }
        if self.remaining > 0 && self.record {
            // Content nobody read: data on an entry the unpacker skips (the root entry, a
            // whiteout, the opaque marker). Kept with the skeleton's raw bytes, so that the
            // layer reassembled from it is the stream its diff ID names. Such content has
            // no use, so a lot of it is refused rather than held in memory.
            let n = self.remaining;
            if n > 1 << 20 {
                return Err(ArchiveError::Corrupt(format!("{n} bytes of data on an entry that holds none")));
            }
            self.skip_recorded(n, "entry data")?;
            self.remaining = 0;
        }
        if self.remaining > 0 {
            // Unread content is discarded (nothing is recorded).
            let n = self.remaining;
            io::copy(&mut (&mut self.inner).take(n), &mut io::sink())
                .map_err(|e| ArchiveError::io("skipping entry data", e))
                .and_then(|copied| {
                    if copied < n {
                        Err(ArchiveError::Corrupt("unexpected end of archive inside an entry (truncated?)".into()))
                    } else {
                        Ok(())
                    }
                })?;
            self.remaining = 0;
        }
        let pad = std::mem::take(&mut self.pad);
        if !self.skip_padding(pad)? {
            // The stream ends inside the last entry's padding: accepted as the end, as
            // Go's archive/tar accepts it (the docker CLI's `build -f - DIR` sends such a
            // tar, without padding or trailer after the Dockerfile it appends).
            self.done = true;
            return Ok(None);
        }

        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let mut long_name: Option<String> = None;
        let mut long_link: Option<String> = None;
        loop {
            let mut block = [0u8; BLOCK];
            let mut got = 0;
            while got < BLOCK {
                let n = self.inner.read(&mut block[got..]).map_err(|e| ArchiveError::io("reading a tar header", e))?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            if self.record {
                self.raw.extend_from_slice(&block[..got]);
            }
            if got == 0 && pax.is_empty() && long_name.is_none() && long_link.is_none() {
                // A stream that ends on an entry boundary without the zero trailer is
                // accepted, as Go's archive/tar accepts it.
                self.done = true;
                return Ok(None);
            }
            if got < BLOCK {
                return Err(ArchiveError::Corrupt("unexpected end of archive inside a header (truncated?)".into()));
            }
            if header::is_zero_block(&block) {
                self.done = true;
                // Keep the trailer (and any record padding) so the stream can be reproduced.
                let mut rest = Vec::new();
                self.inner.read_to_end(&mut rest).map_err(|e| ArchiveError::io("reading the archive trailer", e))?;
                if self.record {
                    self.raw.extend_from_slice(&rest);
                }
                return Ok(None);
            }
            let raw = header::parse_block(&block)?;
            match raw.typeflag {
                b'x' => {
                    let data = self.read_ext_data(raw.size, "a PAX header")?;
                    pax.extend(header::parse_pax(&data)?);
                    continue;
                }
                b'g' => {
                    // Global PAX headers carry nothing berth applies; keep them raw only.
                    self.read_ext_data(raw.size, "a global PAX header")?;
                    continue;
                }
                b'L' => {
                    let data = self.read_ext_data(raw.size, "a GNU long name")?;
                    long_name = Some(String::from_utf8_lossy(&data).trim_end_matches('\0').to_string());
                    continue;
                }
                b'K' => {
                    let data = self.read_ext_data(raw.size, "a GNU long link name")?;
                    long_link = Some(String::from_utf8_lossy(&data).trim_end_matches('\0').to_string());
                    continue;
                }
                _ => {}
            }
            let kind = match raw.typeflag {
                b'0' | b'\0' | b'7' => EntryType::Regular,
                b'1' => EntryType::HardLink,
                b'2' => EntryType::Symlink,
                b'3' => EntryType::Char,
                b'4' => EntryType::Block,
                b'5' => EntryType::Directory,
                b'6' => EntryType::Fifo,
                b'S' => return Err(ArchiveError::Unsupported(format!("{}: GNU sparse files", raw.name))),
                other => {
                    return Err(ArchiveError::Unsupported(format!("{}: entry type {:?}", raw.name, other as char)));
                }
            };
            let mut h = Header {
                path: long_name.take().unwrap_or(raw.name),
                link: long_link.take().unwrap_or(raw.link),
                kind,
                mode: raw.mode,
                uid: raw.uid,
                gid: raw.gid,
                uname: raw.uname,
                gname: raw.gname,
                size: raw.size,
                mtime: raw.mtime,
                mtime_nsec: 0,
                dev_major: raw.dev_major,
                dev_minor: raw.dev_minor,
                xattrs: Vec::new(),
            };
            for (k, v) in pax.drain(..) {
                let text = || String::from_utf8_lossy(&v).into_owned();
                match k.as_str() {
                    "path" => h.path = text(),
                    "linkpath" => h.link = text(),
                    "size" => h.size = text().parse().map_err(|_| ArchiveError::Corrupt("bad PAX size".into()))?,
                    "uid" => h.uid = text().parse().map_err(|_| ArchiveError::Corrupt("bad PAX uid".into()))?,
                    "gid" => h.gid = text().parse().map_err(|_| ArchiveError::Corrupt("bad PAX gid".into()))?,
                    "uname" => h.uname = text(),
                    "gname" => h.gname = text(),
                    "mtime" => {
                        let t = text();
                        let (s, f) = t.split_once('.').unwrap_or((&t, ""));
                        h.mtime = s.parse().map_err(|_| ArchiveError::Corrupt("bad PAX mtime".into()))?;
                        let mut f = f.chars().take(9).collect::<String>();
                        while f.len() < 9 {
                            f.push('0');
                        }
                        h.mtime_nsec = f.parse().unwrap_or(0);
                    }
                    _ => {
                        if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                            h.xattrs.push((name.to_string(), v));
                        }
                    }
                }
            }
            if h.kind == EntryType::Regular {
                self.remaining = h.size;
                self.pad = header::padding(h.size);
            } else {
                // Some writers give links or directories a size; those bytes are not file
                // content, so they are kept with the raw stream.
                let extra = h.size;
                let padded = extra
                    .checked_add(header::padding(extra))
                    .ok_or_else(|| ArchiveError::Corrupt(format!("entry {} claims {extra} bytes", h.path)))?;
                self.skip_recorded(padded, "entry data")?;
                h.size = 0;
            }
            return Ok(Some(h));
        }
    }

    /// Reads content of the current regular-file entry.
    pub fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.remaining.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive truncated inside a file"));
        }
        self.remaining -= n as u64;
        Ok(n)
    }

    /// A `Read` over the current entry's content.
    pub fn data(&mut self) -> EntryData<'_, R> {
        EntryData { reader: self }
    }
}

pub struct EntryData<'a, R> {
    reader: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read_data(buf)
    }
}

impl<R: BufRead> TarReader<R> {
    /// The next piece of the current entry's data, in place in the reader's buffer (empty
    /// once the entry's data is all consumed); pass what was used to
    /// [`TarReader::consume_data`].
    pub fn data_buf(&mut self) -> io::Result<&[u8]> {
        if self.remaining == 0 {
            return Ok(&[]);
        }
        let b = self.inner.fill_buf()?;
        if b.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive truncated inside a file"));
        }
        let n = b.len().min(self.remaining.min(usize::MAX as u64) as usize);
        Ok(&b[..n])
    }

    /// Marks `n` bytes of what [`TarReader::data_buf`] returned as used.
    pub fn consume_data(&mut self, n: usize) {
        self.inner.consume(n);
        self.remaining -= n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::TarWriter;

    #[test]
    fn reads_what_the_writer_wrote_and_records_the_rest() {
        let mut w = TarWriter::new(Vec::new());
        let mut h = Header::new("a.txt", EntryType::Regular);
        h.size = 5;
        w.append(&h, &mut &b"hello"[..]).unwrap();
        w.append(&Header::new("dir/", EntryType::Directory), &mut io::empty()).unwrap();
        let bytes = w.finish().unwrap();

        let mut r = TarReader::new(&bytes[..], true);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.path, "a.txt");
        let mut s = String::new();
        r.data().read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.kind, EntryType::Directory);
        assert!(r.next_entry().unwrap().is_none());
        // Everything but the five content bytes was recorded.
        assert_eq!(r.take_raw().len(), bytes.len() - 5);
    }

    #[test]
    fn truncation_is_an_error() {
        let mut w = TarWriter::new(Vec::new());
        let mut h = Header::new("a.txt", EntryType::Regular);
        h.size = 1000;
        w.append(&h, &mut &vec![7u8; 1000][..]).unwrap();
        let bytes = w.finish().unwrap();
        let mut r = TarReader::new(&bytes[..700], false);
        r.next_entry().unwrap();
        let err = io::copy(&mut r.data(), &mut io::sink()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut r = TarReader::new(&bytes[..300], false);
        assert!(matches!(r.next_entry(), Err(ArchiveError::Corrupt(_))));
    }

    /// The docker CLI's `build -f - DIR` ends its tar right after the last entry's data.
    #[test]
    fn a_stream_ending_in_the_last_padding_ends_the_archive() {
        let mut w = TarWriter::new(Vec::new());
        let mut h = Header::new("a.txt", EntryType::Regular);
        h.size = 47;
        w.append(&h, &mut &vec![7u8; 47][..]).unwrap();
        let bytes = w.finish().unwrap();
        let mut r = TarReader::new(&bytes[..512 + 47], false);
        assert_eq!(r.next_entry().unwrap().unwrap().path, "a.txt");
        assert_eq!(io::copy(&mut r.data(), &mut io::sink()).unwrap(), 47);
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn garbage_is_not_a_tar() {
        let junk = vec![b'z'; 2048];
        let mut r = TarReader::new(&junk[..], false);
        assert!(matches!(r.next_entry(), Err(ArchiveError::Corrupt(_))));
    }

    /// fuzz/regressions/tar_reader/size-overflow.tar: a symlink claiming u64::MAX bytes
    /// overflowed the padding sum (and in release wrapped, reading the stream out of step).
    #[test]
    fn a_non_file_entry_claiming_u64_max_bytes_is_corrupt() {
        let input =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/regressions/tar_reader/size-overflow.tar"))
                .unwrap();
        let mut r = TarReader::new(&input[..], true);
        assert!(matches!(r.next_entry(), Err(ArchiveError::Corrupt(_))));
    }
}
