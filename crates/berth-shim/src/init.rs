//! `berth-shim init -- cmd…`: a minimal init for `docker run --init`. It runs the command
//! as its child, forwards the signals a container receives to it, reaps every zombie, and
//! exits with the command's status.
//!
//! `init -- --secret-env NAME=FILE … -- cmd…` also gives the command the variable `NAME`
//! with `FILE`'s content: the builder's way to hand a RUN step a secret as a variable
//! (`RUN --mount=type=secret,env=NAME`) without writing it into any container config,
//! which the daemon keeps on disk. The file is on a tmpfs the builder made.
//!
//! `berth-shim pause`: the holder of a CRI pod sandbox. It owns the pod's namespaces by
//! existing, reaps whatever is reparented to it, and exits on SIGTERM, SIGINT or SIGQUIT.

use std::os::unix::process::CommandExt;

use rustix::process::{Pid, WaitOptions};

#[allow(unsafe_code)]
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigfillset/sigprocmask only write into the sets given.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_BLOCK, &all, &mut old);
        old
    }
}

#[allow(unsafe_code)]
fn restore_mask_in_child(cmd: &mut std::process::Command, old: libc::sigset_t) {
    // SAFETY: runs in the forked child before exec; sigprocmask is async-signal-safe and
    // reads only the copied set.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[allow(unsafe_code)]
fn wait_signal() -> i32 {
    // SAFETY: as above; sigwaitinfo writes one siginfo_t into `info`.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::sigwaitinfo(&all, &mut info)
    }
}

/// Variables `--secret-env` sets, and the arguments after them.
type SecretEnv<'a> = (Vec<(String, std::ffi::OsString)>, &'a [&'a String]);

/// Takes the leading `--secret-env NAME=FILE` pairs (and the `--` after them) off `args`.
fn secret_env<'a>(mut args: &'a [&'a String]) -> Result<SecretEnv<'a>, String> {
    use std::os::unix::ffi::OsStringExt;
    let mut env = Vec::new();
    while args.first().is_some_and(|a| *a == "--secret-env") {
        let spec = args.get(1).ok_or("--secret-env needs NAME=FILE")?;
        let (name, file) = spec.split_once('=').ok_or("--secret-env needs NAME=FILE")?;
        let value = std::fs::read(file).map_err(|e| format!("reading the secret for {name}: {e}"))?;
        env.push((name.to_string(), std::ffi::OsString::from_vec(value)));
        args = &args[2..];
        if args.first().is_some_and(|a| *a == "--") {
            args = &args[1..];
        }
    }
    Ok((env, args))
}

pub fn run(args: &[String]) -> i32 {
    let args: Vec<&String> = args.iter().skip_while(|a| *a == "--").collect();
    let (env, args) = match secret_env(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("berth-init: {e}");
            return 2;
        }
    };
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("berth-init: no command given");
        return 2;
    };
    let old = block_signals();
    let mut command = std::process::Command::new(cmd);
    command.args(rest.iter().map(|s| s.as_str()));
    command.envs(env);
    // The child gets its own process group, so a terminal's ^C reaches it, and the signal
    // mask init had before blocking everything (std does not reset it).
    command.process_group(0);
    restore_mask_in_child(&mut command, old);
    let child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-init: exec {cmd}: {e}");
            return if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
        }
    };
    let child_pid = child.id() as i32;
    loop {
        let sig = wait_signal();
        if sig == libc::SIGCHLD {
            while let Ok(Some((pid, status))) = rustix::process::wait(WaitOptions::NOHANG) {
                if pid.as_raw_nonzero().get() == child_pid {
                    // Reap what is left, then leave with the child's status.
                    while let Ok(Some(_)) = rustix::process::wait(WaitOptions::NOHANG) {}
                    return status.exit_status().unwrap_or_else(|| 128 + status.terminating_signal().unwrap_or(0));
                }
            }
        } else if sig > 0
            && let (Some(p), Some(s)) = (Pid::from_raw(child_pid), rustix::process::Signal::from_named_raw(sig))
        {
            // The child may have exited since the signal came: nothing to forward it to.
            let _ = rustix::process::kill_process(p, s);
        }
    }
}

/// The pod holder's loop (see the module doc).
pub fn pause() -> i32 {
    block_signals();
    loop {
        match wait_signal() {
            libc::SIGCHLD => while let Ok(Some(_)) = rustix::process::wait(WaitOptions::NOHANG) {},
            libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => return 0,
            _ => {}
        }
    }
}
