//! How a process that streams layers uses the C allocator.
//!
//! A pull, a push, an upload, a load or a save passes hundreds of MiB through buffers of a few hundred KiB,
//! each allocated on one thread and freed on another. With glibc's defaults such buffers
//! are mapped and unmapped one by one, or the freed top of the heap is handed back to the
//! kernel and faulted in again moments later: page faults and page clearing were about a
//! tenth of a pull's CPU. [`tune`] makes the allocator keep freed memory for reuse instead,
//! and a [`Transfer`] gives it back when the last one in flight ends, so an idle daemon or
//! registry holds no more than before (17 MiB resident after six pulls of 200 MiB, as
//! without any of this).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Allocations below this come from the heap, not from a mapping of their own.
#[cfg(target_env = "gnu")]
const MMAP_THRESHOLD: i32 = 4 << 20;
/// Free memory at the top of the heap that is kept rather than returned (16 MiB did as well
/// as more in a pull of 200 MiB; 8 MiB did not). What a transfer leaves is returned when it
/// ends; what other work leaves, by the daemon's trim after 30 s without requests.
#[cfg(target_env = "gnu")]
const TRIM_THRESHOLD: i32 = 16 << 20;

/// Sets the allocator up for streaming. Call it before the process starts any other thread:
/// glibc reads these settings without locks (mallopt is not thread-safe), so they are set
/// once, here, and never changed while threads allocate.
pub fn tune() {
    #[cfg(target_env = "gnu")]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes glibc's allocation parameters; no memory is touched, and
    // no other thread exists yet to read them concurrently. A failure (0) leaves glibc's
    // default for that parameter, which works.
    unsafe {
        // One heap for every thread: malloc_trim returns the free top of the main heap only,
        // so with a heap per thread (glibc's default) a transfer's buffers would stay resident
        // in those threads' heaps (40-50 MiB after six 200 MiB pulls, against 17 MiB). The
        // cost is one lock for allocations too large for the per-thread caches (over 1 KiB);
        // on this 2-worker runtime it did not show: 50 detached containers in 0.96 s, as
        // before (scripts/bench.sh).
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Held while a transfer runs; when the last one in flight is dropped, the memory the
/// allocator kept is returned to the kernel (on a blocking thread when inside a runtime).
#[must_use]
pub struct Transfer(());

impl Transfer {
    pub fn begin() -> Transfer {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        Transfer(())
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if IN_FLIGHT.fetch_sub(1, Ordering::SeqCst) == 1 {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn_blocking(release)),
                Err(_) => release(),
            }
        }
    }
}

/// Returns the free memory the allocator holds to the kernel, unless another transfer has
/// begun meanwhile (it would only fault its buffers in again).
fn release() {
    if IN_FLIGHT.load(Ordering::SeqCst) > 0 {
        return;
    }
    #[cfg(target_env = "gnu")]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim only releases free pages the allocator owns (under its locks);
    // no live allocation is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The only test that begins transfers: the counter is the process's.
    #[test]
    fn counts_the_transfers_in_flight() {
        let base = IN_FLIGHT.load(Ordering::SeqCst);
        let a = Transfer::begin();
        let b = Transfer::begin();
        assert_eq!(IN_FLIGHT.load(Ordering::SeqCst), base + 2);
        drop(a);
        assert_eq!(IN_FLIGHT.load(Ordering::SeqCst), base + 1);
        drop(b);
        assert_eq!(IN_FLIGHT.load(Ordering::SeqCst), base);
    }
}
