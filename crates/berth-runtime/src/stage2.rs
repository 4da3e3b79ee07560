//! The last step of a two-stage start (see the `child` module): stage 1, invisible to the
//! container and already confined, starts stage 2, the process that appears in the
//! container and becomes its program, and tells the supervisor how that went.
//!
//! Stage 2 holds nothing but its stdio. It is started with `CLONE_VM | CLONE_VFORK` on a
//! stack of its own, so stage 1 waits while it runs and learns from shared memory whether
//! its `execve` failed, without a pipe that stage 2 would have to carry; its first system
//! call closes every descriptor above 2 (the copies of stage 1's, taken by `clone`), and it
//! then only starts its session, takes the terminal and execs, allocating nothing. Stage 1
//! reports to the supervisor through a [`Report`] page: a pipe would have to stay open in
//! stage 1 while stage 2 is visible, and a thief could keep its read end from ever ending.

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
    Failed { msg: String, stage2: Option<i32> },
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
                Outcome::Failed { msg: String::from_utf8_lossy(&p.msg[..n]).into_owned(), stage2: (pid > 0).then_some(pid) }
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
            envp: env.iter().filter(|e| e.contains('=')).map(|e| CString::new(e.as_str())).collect::<Result<_, _>>().ok()?,
        })
    }
}

/// Where stage 2 failed, if it did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    Setsid,
    Terminal,
    Exec,
}

struct Stage2Args {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    tty: bool,
    /// `step << 16 | errno` when stage 2 failed, 0 otherwise.
    failed: AtomicI32,
}

extern "C" fn stage2_main(arg: *mut libc::c_void) -> libc::c_int {
    #[allow(unsafe_code)]
    // SAFETY: `arg` is the `Stage2Args` stage 1 keeps alive (CLONE_VFORK suspends it until
    // this process execs or exits); the calls below are plain system calls with valid
    // arguments, and nothing here allocates or touches stage 1's heap.
    unsafe {
        let a = &*(arg as *const Stage2Args);
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        if libc::setsid() < 0 {
            stage2_fail(a, 1);
        }
        if a.tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
            stage2_fail(a, 2);
        }
        libc::execve(a.path, a.argv, a.envp);
        stage2_fail(a, 3)
    }
}

#[allow(unsafe_code)]
fn stage2_fail(a: &Stage2Args, step: i32) -> ! {
    // SAFETY: reading this thread's errno and exiting without running anything of the
    // shared address space's (atexit handlers, buffers) are both sound here.
    unsafe {
        let errno = *libc::__errno_location();
        a.failed.store(step << 16 | (errno & 0xffff), Ordering::Relaxed);
        libc::_exit(127)
    }
}

/// Starts stage 2 as a sibling (`CLONE_PARENT`: the supervisor reaps it) and returns its pid
/// once it has exec'd `program`, or where it failed, with its pid, and the error.
#[allow(unsafe_code)]
pub fn spawn(program: &Program, tty: bool) -> Result<i32, (Option<i32>, Step, std::io::Error)> {
    let mut argv: Vec<*const libc::c_char> = program.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = program.envp.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let args = Stage2Args { path: program.path.as_ptr(), argv: argv.as_ptr(), envp: envp.as_ptr(), tty, failed: AtomicI32::new(0) };
    let mut stack = vec![0u8; 64 * 1024];
    // The stack grows down; its top, 16-byte aligned.
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PARENT | libc::SIGCHLD;
    // SAFETY: the child runs `stage2_main` on its own stack (`stack`, alive until clone
    // returns, which CLONE_VFORK delays until the child has exec'd or exited) and shares
    // our memory only to read `args` and write its atomic `failed`. This process is
    // single-threaded (the crate's contract), so no lock is held by anyone else.
    let pid = unsafe { libc::clone(stage2_main, top as *mut libc::c_void, flags, &args as *const Stage2Args as *mut libc::c_void) };
    drop(stack);
    if pid < 0 {
        return Err((None, Step::Exec, std::io::Error::last_os_error()));
    }
    match args.failed.load(Ordering::Relaxed) {
        0 => Ok(pid),
        f => {
            let step = match f >> 16 {
                1 => Step::Setsid,
                2 => Step::Terminal,
                _ => Step::Exec,
            };
            Err((Some(pid), step, std::io::Error::from_raw_os_error(f & 0xffff)))
        }
    }
}
