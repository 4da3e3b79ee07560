//! Writing tar streams.

use std::io::{self, Read, Write};

use crate::header::{self, BLOCK, Header};

pub struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    /// Writes the encoded header (see [`header::encode`]) and returns its bytes, so callers
    /// that build skeletons can keep them.
    pub fn append_header(&mut self, h: &Header) -> io::Result<Vec<u8>> {
        let enc = header::encode(h);
        self.out.write_all(&enc)?;
        Ok(enc)
    }

    /// Copies exactly `size` bytes of content and the padding after them. Returns the padding
    /// bytes written.
    pub fn append_data(&mut self, size: u64, data: &mut dyn Read) -> io::Result<Vec<u8>> {
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("file shrank while archiving ({copied} of {size} bytes)"),
            ));
        }
        let pad = vec![0u8; header::padding(size) as usize];
        self.out.write_all(&pad)?;
        Ok(pad)
    }

    pub fn append(&mut self, h: &Header, data: &mut dyn Read) -> io::Result<()> {
        self.append_header(h)?;
        if h.kind == header::EntryType::Regular {
            self.append_data(h.size, data)?;
        }
        Ok(())
    }

    /// Writes the two zero blocks that end an archive and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; BLOCK * 2])?;
        self.out.flush()?;
        Ok(self.out)
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// The underlying writer, without a trailer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The trailer bytes [`TarWriter::finish`] writes.
/// A tar holding one regular file (mode 0644), with the end-of-archive trailer if `trailer`
/// (without it, for appending to a longer stream).
pub fn single_file(name: &str, data: &[u8], trailer_too: bool) -> Vec<u8> {
    let mut h = Header::new(name, crate::header::EntryType::Regular);
    h.size = data.len() as u64;
    let mut w = TarWriter::new(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = w.append(&h, &mut &data[..]);
    let mut v = w.into_inner();
    if trailer_too {
        v.extend(trailer());
    }
    v
}

pub fn trailer() -> Vec<u8> {
    vec![0u8; BLOCK * 2]
}
