//! Starting the disk writes of a large file while it is still being written.
//!
//! A layer is unpacked (or a blob received) and then made durable with one `fsync` or
//! `syncfs` before it is published. Left alone, the kernel writes the data out only when
//! that sync asks, so a 200 MiB file costs a fifth of a second of waiting at the end.
//! [`Writeback`] asks for each window of a file to be written out as soon as it is complete
//! (`sync_file_range(SYNC_FILE_RANGE_WRITE)`: start, do not wait), so the device works
//! while the CPU is still unpacking or receiving, and the final sync finds little left.
//! It never waits for the disk and never makes anything durable by itself: the caller's
//! sync stays the only durability point.

use std::os::fd::{AsFd, AsRawFd};

/// How much of a file is handed to the kernel at a time.
pub const WINDOW: u64 = 8 << 20;

/// Tracks the bytes appended to one file and starts writing each full [`WINDOW`] out.
#[derive(Debug, Default)]
pub struct Writeback {
    /// Where the file's data starts to be counted (an append to an existing file).
    started: u64,
    /// Bytes appended since `started`.
    written: u64,
    /// How far the file itself may trail what was counted (bytes still in a buffer).
    lag: u64,
}

impl Writeback {
    /// For a file whose data from `offset` on is about to be appended.
    pub fn at(offset: u64) -> Writeback {
        Writeback { started: offset, written: 0, lag: 0 }
    }

    /// For a writer that buffers: the last `lag` bytes counted may not have reached the
    /// file yet, so a window is started only once that much more has been counted past it.
    pub fn behind(self, lag: u64) -> Writeback {
        Writeback { lag, ..self }
    }

    /// Records `n` more bytes written to `file`; when that completes a window, starts
    /// writing it out. Best effort: a file system that cannot do it is simply synced later.
    pub fn wrote(&mut self, file: impl AsFd, n: usize) {
        let before = self.written.saturating_sub(self.lag) / WINDOW;
        self.written += n as u64;
        let after = self.written.saturating_sub(self.lag) / WINDOW;
        if after > before {
            let from = self.started + before * WINDOW;
            let len = (after - before) * WINDOW;
            start_writeout(file, from, len);
        }
    }
}

#[allow(unsafe_code)]
fn start_writeout(file: impl AsFd, offset: u64, len: u64) {
    let fd = file.as_fd();
    // SAFETY: sync_file_range takes no pointers; `fd` is borrowed from a live descriptor, so
    // it stays open for the call. Errors (EINVAL on file systems without support, ESPIPE on
    // pipes) leave the file as it was and are ignored on purpose.
    let _ = unsafe {
        libc::sync_file_range(
            fd.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn counts_windows_across_writes_and_never_fails() {
        let mut f = tempfile::tempfile().unwrap();
        let mut wb = Writeback::at(0);
        let chunk = vec![7u8; 3 << 20];
        for _ in 0..6 {
            f.write_all(&chunk).unwrap();
            wb.wrote(&f, chunk.len());
        }
        assert_eq!(wb.written, 18 << 20);
        assert_eq!(f.metadata().unwrap().len(), 18 << 20);
        // A descriptor that cannot be synced is ignored.
        let (r, _w) = std::io::pipe().unwrap();
        Writeback::at(0).wrote(&r, WINDOW as usize);
    }
}
