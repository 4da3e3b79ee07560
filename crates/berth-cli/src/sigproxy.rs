//! `--sig-proxy`: the signals the CLI receives while attached go to the container, as with
//! the docker CLI (for a container without a terminal, whose Ctrl-C is a character).

use std::thread::JoinHandle;

use signal_hook::consts::signal::*;
use signal_hook::iterator::{Handle, Signals};

use crate::client::Client;

/// Every signal a process can be sent and catch, but those that are about the CLI's own
/// terminal and children (SIGCHLD, SIGPIPE, SIGURG, SIGWINCH), as docker leaves them.
const FORWARDED: &[i32] = &[
    SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, SIGXCPU,
    SIGXFSZ, SIGVTALRM, SIGPROF, SIGIO, SIGSYS, SIGTRAP,
];

/// Forwards signals to a container until dropped.
pub struct SigProxy {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl SigProxy {
    /// Starts forwarding to container `id`; `None` when the signals cannot be caught.
    pub fn start(c: &Client, id: &str) -> Option<SigProxy> {
        let mut signals = Signals::new(FORWARDED).ok()?;
        let handle = signals.handle();
        let (c, id) = (c.clone(), id.to_string());
        let thread = std::thread::spawn(move || {
            for sig in signals.forever() {
                if let Err(e) = c.post(&format!("/containers/{id}/kill?signal={sig}")) {
                    eprintln!("berth: forwarding signal {sig}: {e}");
                }
            }
        });
        Some(SigProxy { handle, thread: Some(thread) })
    }
}

impl Drop for SigProxy {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            // Err only if the thread panicked, and the panic has printed its message.
            let _ = t.join();
        }
    }
}
