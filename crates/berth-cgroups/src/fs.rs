//! Reading and writing control files, with the file named in every error.

use std::path::Path;

use crate::{CgroupError, Result};

pub fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| CgroupError::Io { path: path.to_path_buf(), source: e })
}

pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| CgroupError::Io { path: path.to_path_buf(), source: e })
}

pub fn mkdir(path: &Path) -> Result<()> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(CgroupError::Io { path: path.to_path_buf(), source: e }),
    }
}

/// `key value` lines (memory.stat, memory.events, cpu.stat).
pub fn keyed(s: &str, key: &str) -> Option<u64> {
    s.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key)).then(|| it.next()?.parse().ok()).flatten()
    })
}

pub fn read_u64(path: &Path) -> Option<u64> {
    read(path).ok()?.trim().parse().ok()
}

pub fn remove_dir_retrying(path: &Path) -> Result<()> {
    for attempt in 0..50 {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            // Processes still exiting keep the group busy for a moment.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) && attempt < 49 => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(CgroupError::Io { path: path.to_path_buf(), source: e }),
        }
    }
    Ok(())
}
