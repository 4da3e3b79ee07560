//! How a process that streams layers uses the C allocator.
//!
//! A pull, a push, an upload, a load or a save passes hundreds of MiB through buffers of a few hundred KiB,
//! each allocated on one thread and freed on another. With glibc's defaults such buffers
//! are mapped and unmapped one by one, or the freed top of the heap is handed back to the
//! kernel and faulted in again moments later: page faults and page clearing were about a
//! tenth of a pull's CPU. [`tune`] makes the allocator keep freed memory for reuse instead
//! while a [`Transfer`] runs, and gives it back when the last one in flight ends, so an idle
//! daemon or registry holds no more than before (17 MiB resident after six pulls of 200 MiB,
//! as without any of this; 40-50 MiB with a heap per thread).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Allocations below this come from the heap, not from a mapping of their own.
const MMAP_THRESHOLD: i32 = 4 << 20;
/// Free memory at the top of a heap that is kept rather than returned, while transfers run
/// (16 MiB did as well as more in a pull of 200 MiB; 8 MiB did not).
const TRIM_THRESHOLD_BUSY: i32 = 16 << 20;
/// The same when none runs: glibc's default.
const TRIM_THRESHOLD_IDLE: i32 = 128 << 10;

/// Sets the allocator up for streaming; call once, early in `main`.
pub fn tune() {
    // One heap for every thread: `malloc_trim` gives back the free top of the main heap
    // only, so with a heap per thread (the default) a transfer's buffers would stay
    // resident in those threads' heaps. Small allocations still come from per-thread
    // caches without the lock; a transfer's large ones, a few thousand a second at most,
    // each cost far less than the copy it holds.
    set(libc::M_ARENA_MAX, 1);
    set(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    set(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_IDLE);
}

fn set(param: i32, value: i32) {
    #[cfg(target_env = "gnu")]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes glibc's allocation parameters (under the allocator's own
    // lock); no memory is touched. Failure (0) leaves the setting as it was, which works.
    unsafe {
        libc::mallopt(param, value);
    }
}

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Held while a transfer runs; when the last one is dropped, the memory the allocator kept
/// is returned to the kernel (on a blocking thread when inside a runtime).
#[must_use]
pub struct Transfer(());

impl Transfer {
    pub fn begin() -> Transfer {
        if IN_FLIGHT.fetch_add(1, Ordering::SeqCst) == 0 {
            set(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BUSY);
        }
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

/// Returns the free memory the allocator holds to the kernel.
fn release() {
    // Another transfer may have begun meanwhile: it would only fault its buffers in again.
    // (One that begins between this check and the next line runs with glibc's default
    // threshold: slower, not wrong.)
    if IN_FLIGHT.load(Ordering::SeqCst) > 0 {
        return;
    }
    set(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_IDLE);
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
