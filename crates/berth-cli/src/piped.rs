//! A request body that a thread writes into a pipe (a tar of local files), read to its end.
//! The thread's error, if it had one, then becomes the reader's: the request fails with it
//! instead of sending the part written before it as if it were the whole (a `cp` or a build
//! context missing a file it could not read).

use std::io::{self, PipeReader, PipeWriter, Read};
use std::thread::JoinHandle;

pub struct Piped {
    pipe: PipeReader,
    writer: Option<JoinHandle<io::Result<()>>>,
}

/// Runs `write` on a thread with the pipe's writing end (closed when it returns).
pub fn spawn(write: impl FnOnce(PipeWriter) -> io::Result<()> + Send + 'static) -> io::Result<Piped> {
    let (pipe, w) = io::pipe()?;
    let writer = std::thread::spawn(move || write(w));
    Ok(Piped { pipe, writer: Some(writer) })
}

impl Read for Piped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n == 0
            && !buf.is_empty()
            && let Some(w) = self.writer.take()
        {
            w.join().map_err(|_| io::Error::other("the thread writing the stream panicked"))??;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_writers_error_ends_the_stream_with_it() {
        let mut r = spawn(|mut w| {
            w.write_all(b"part")?;
            Err(io::Error::other("permission denied"))
        })
        .unwrap();
        let mut got = Vec::new();
        let e = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(e.to_string(), "permission denied");
        assert_eq!(got, b"part");
    }

    #[test]
    fn a_whole_stream_ends_cleanly() {
        let mut r = spawn(|mut w| w.write_all(b"all")).unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"all");
    }
}
