//! The last step of a two-stage start (see the `child` module): stage 1, invisible to the
//! container and already confined, starts stage 2, the process that appears in the
//! container and becomes its program, and tells the supervisor how that went.
//!
//! Stage 2 is forked with `CLONE_VFORK` (stage 1 waits until it has exec'd or exited) but
//! not `CLONE_VM`: a process the container can see and, with CAP_SYS_PTRACE, write into
//! must not share stage 1's memory (stage 1 runs in the supervisor's pid namespace, where
//! host pids mean something). Stage 2 holds nothing but its stdio; it starts its session,
//! takes the terminal and execs. Whether its `execve` failed comes back on a [`Outcome`]
//! page of its own, which stage 1 only reads two numbers from. Stage 1 reports to the
//! supervisor through a [`Report`] page, which no process it forks inherits
//! (`MADV_DONTFORK`): a pipe would have to stay open in stage 1 while stage 2 is visible,
//! and a thief could keep its read end from ever ending.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// A page shared (`MAP_SHARED`, kept across fork) between the supervisor and stage 1: stage
/// 1 writes its outcome there and exits; the supervisor reads it once stage 1 has exited.
pub struct Report {
    page: NonNull<Page>,
}

#[repr(C)]
struct Page {
    /// 0: nothing reported; 1: started, `pid` is stage 2; 2: failed, `msg` says why
    /// (`pid` is stage 2's if it was forked).
    state: AtomicU32,
    pid: AtomicI32,
    len: AtomicU32,
    msg: [u8; MSG_MAX],
}

const MSG_MAX: usize = 4000;

/// What stage 1 reported.
pub enum Outcome {
    Started(i32),
    Failed {
        msg: String,
        stage2: Option<i32>,
    },
    /// Stage 1 ended without a word (it was killed).
    Nothing,
}

impl Report {
    #[allow(unsafe_code)]
    pub fn new() -> std::io::Result<Report> {
        // SAFETY: a fresh anonymous mapping at an address the kernel picks; nothing else
        // refers to that memory. It is zero-filled, which is a valid `Page` (state 0).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<Page>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Report { page: NonNull::new(ptr.cast::<Page>()).ok_or(std::io::ErrorKind::OutOfMemory)? })
    }

    /// In stage 1: keeps the page out of every process it forks (the processes that the
    /// container can see), so only stage 1 and the supervisor can write it.
    #[allow(unsafe_code)]
    pub fn keep_from_children(&self) -> std::io::Result<()> {
        // SAFETY: advice on the mapping this object owns; it changes only what fork copies.
        let r = unsafe { libc::madvise(self.page.as_ptr().cast(), std::mem::size_of::<Page>(), libc::MADV_DONTFORK) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn page(&self) -> &Page {
        // SAFETY: the mapping lives as long as `self` and holds a `Page`, whose fields are
        // atomics or bytes written only by stage 1 before it publishes `state`.
        #[allow(unsafe_code)]
        unsafe {
            self.page.as_ref()
        }
    }

    /// In stage 1: stage 2 is running the program.
    pub fn started(&self, pid: i32) {
        let p = self.page();
        p.pid.store(pid, Ordering::Relaxed);
        p.state.store(1, Ordering::Release);
    }

    /// In stage 1: the start failed.
    #[allow(unsafe_code)]
    pub fn failed(&self, msg: &str, stage2: Option<i32>) {
        let p = self.page();
        let n = msg.len().min(MSG_MAX);
        // SAFETY: only stage 1 writes `msg`, before publishing `state`; the supervisor reads
        // it only after stage 1 has exited.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), p.msg.as_ptr().cast_mut(), n);
        }
        p.len.store(n as u32, Ordering::Relaxed);
        p.pid.store(stage2.unwrap_or(0), Ordering::Relaxed);
        p.state.store(2, Ordering::Release);
    }

    /// In the supervisor, once stage 1 has exited.
    pub fn outcome(&self) -> Outcome {
        let p = self.page();
        let pid = p.pid.load(Ordering::Relaxed);
        match p.state.load(Ordering::Acquire) {
            1 if pid > 0 => Outcome::Started(pid),
            2 => {
                let n = (p.len.load(Ordering::Relaxed) as usize).min(MSG_MAX);
                Outcome::Failed {
                    msg: String::from_utf8_lossy(&p.msg[..n]).into_owned(),
                    stage2: (pid > 0).then_some(pid),
                }
            }
            _ => Outcome::Nothing,
        }
    }
}

impl Drop for Report {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `new` with this size and is not used after this.
        unsafe {
            libc::munmap(self.page.as_ptr().cast(), std::mem::size_of::<Page>());
        }
    }
}

/// The program stage 2 execs, prepared by stage 1 (stage 2 allocates nothing).
pub struct Program {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Program {
    pub fn new(path: &std::path::Path, args: &[String], env: &[String]) -> Option<Program> {
        use std::os::unix::ffi::OsStrExt;
        Some(Program {
            path: CString::new(path.as_os_str().as_bytes()).ok()?,
            argv: args.iter().map(|a| CString::new(a.as_str())).collect::<Result<_, _>>().ok()?,
            envp: env
                .iter()
                .filter(|e| e.contains('='))
                .map(|e| CString::new(e.as_str()))
                .collect::<Result<_, _>>()
                .ok()?,
        })
    }
}

/// Where stage 2 failed, if it did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Forking it.
    Start,
    Setsid,
    Terminal,
    Exec,
}

/// Where stage 2 writes how it failed (`step << 16 | errno`; 0 while it has not). Shared
/// with stage 2 only; stage 1 reads it once stage 2 has exec'd or exited.
struct Outcome2 {
    failed: NonNull<AtomicI32>,
}

impl Outcome2 {
    #[allow(unsafe_code)]
    fn new() -> std::io::Result<Outcome2> {
        // SAFETY: a fresh zero-filled anonymous shared mapping; zero is a valid AtomicI32.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Outcome2 { failed: NonNull::new(ptr.cast()).ok_or(std::io::ErrorKind::OutOfMemory)? })
    }

    fn get(&self) -> &AtomicI32 {
        // SAFETY: the mapping lives as long as `self` and holds one AtomicI32 at its start.
        #[allow(unsafe_code)]
        unsafe {
            self.failed.as_ref()
        }
    }
}

impl Drop for Outcome2 {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the mapping made by `new`, not used after this.
        unsafe {
            libc::munmap(self.failed.as_ptr().cast(), 4096);
        }
    }
}

/// Starts stage 2 as a sibling (`CLONE_PARENT`: the supervisor reaps it) and returns its pid
/// once it has exec'd `program`, or where it failed, with its pid, and the error.
pub fn spawn(program: &Program, tty: bool) -> Result<i32, (Option<i32>, Step, std::io::Error)> {
    let mut argv: Vec<*const libc::c_char> = program.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = program.envp.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let outcome = Outcome2::new().map_err(|e| (None, Step::Start, e))?;
    match crate::sys::fork_with(libc::CLONE_VFORK as libc::c_long | libc::CLONE_PARENT as libc::c_long) {
        Err(e) => Err((None, Step::Start, e)),
        Ok(None) => stage2_main(program.path.as_ptr(), &argv, &envp, tty, outcome.get()),
        Ok(Some(pid)) => match outcome.get().load(Ordering::Relaxed) {
            0 => Ok(pid),
            f => {
                let step = match f >> 16 {
                    1 => Step::Setsid,
                    2 => Step::Terminal,
                    _ => Step::Exec,
                };
                Err((Some(pid), step, std::io::Error::from_raw_os_error(f & 0xffff)))
            }
        },
    }
}

/// Stage 2: its own session, the terminal, the program.
#[allow(unsafe_code)]
fn stage2_main(
    path: *const libc::c_char,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    tty: bool,
    failed: &AtomicI32,
) -> ! {
    let fail = |step: i32| -> ! {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        failed.store(step << 16 | (errno & 0xffff), Ordering::Relaxed);
        crate::sys::exit_now(127)
    };
    // SAFETY: plain system calls on this process's own descriptors; `path`, `argv` and
    // `envp` are NUL-terminated arrays of C strings that live in this process's copy of
    // stage 1's memory until execve replaces it.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        if libc::setsid() < 0 {
            fail(1);
        }
        if tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
            fail(2);
        }
        libc::execve(path, argv.as_ptr(), envp.as_ptr());
    }
    fail(3)
}
