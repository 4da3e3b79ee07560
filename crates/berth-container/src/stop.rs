//! `docker stop`: the stop signal under the container's lock, the wait for the exit (with
//! SIGKILL after the timeout) outside it.

use std::sync::Arc;
use std::time::Duration;

use crate::lifecycle::parse_signal;
use crate::{ContainerError, ContainerService, Entry, Result};

/// A stop whose signal has gone out: what `finish_stop` waits for.
struct StopWait {
    exits: u64,
    /// Whether the stop signal was delivered (if not, SIGKILL goes at once).
    sent: bool,
    timeout: i64,
    /// Nothing to wait for (a pending restart was cancelled).
    done: bool,
}

impl ContainerService {
    /// `docker stop`: the stop signal, then SIGKILL after the timeout. Returns `false` if
    /// the container was not running.
    ///
    /// The container's lock is held only while the stop signal is sent, not while waiting
    /// for the exit: a stop that waits long (`t=-1` waits for ever) must not hold `pause`,
    /// `update` or `restart` back.
    #[tracing::instrument(name = "stop", skip_all, fields(container = tracing::field::Empty))]
    pub async fn stop(self: &Arc<Self>, id: &str, timeout: Option<i64>, signal: Option<String>) -> Result<bool> {
        let e = self.get(id)?;
        crate::name_in_span(&e);
        let begun = {
            let _op = e.op.lock().await;
            self.begin_stop(&e, timeout, signal).await?
        };
        match begun {
            Some(waiting) => self.finish_stop(&e, waiting).await.map(|()| true),
            None => Ok(false),
        }
    }

    pub(crate) async fn stop_locked(
        self: &Arc<Self>,
        e: &Arc<Entry>,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<bool> {
        match self.begin_stop(e, timeout, signal).await? {
            Some(waiting) => self.finish_stop(e, waiting).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// Sends the stop signal (under the container's lock). `None` if there was nothing to
    /// wait for (not running, or a pending restart cancelled).
    async fn begin_stop(
        self: &Arc<Self>,
        e: &Arc<Entry>,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<Option<StopWait>> {
        let rec = e.record();
        if !self.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
            e.update(|r| r.stopped_by_user = true);
            self.persist_or_log(e);
        }
        if e.update(|r| r.state.cancel_restart()).is_ok() {
            self.persist_or_log(e);
            return Ok(Some(StopWait { exits: e.life.borrow().exits, sent: false, timeout: 0, done: true }));
        }
        if !rec.state.is_running() {
            return Ok(None);
        }
        if rec.state.is_paused() {
            self.set_paused(e, false).await?;
        }
        let sig_name = signal.unwrap_or_else(|| {
            if rec.config.stop_signal.is_empty() { "SIGTERM".into() } else { rec.config.stop_signal.clone() }
        });
        let sig = parse_signal(&sig_name)?;
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let exits = e.life.borrow().exits;
        self.emit(&rec, "kill", &[("signal", sig.to_string())]);
        let sent = self.signal(&rec, sig, false).await.is_ok();
        Ok(Some(StopWait { exits, sent, timeout, done: false }))
    }

    /// Waits for the exit, with SIGKILL after the timeout.
    async fn finish_stop(self: &Arc<Self>, e: &Arc<Entry>, w: StopWait) -> Result<()> {
        if w.done {
            return Ok(());
        }
        let (rec, exits, timeout) = (e.record(), w.exits, w.timeout);
        let stopped = w.sent
            && timeout != 0
            && Self::wait_exit(e, exits, (timeout >= 0).then(|| Duration::from_secs(timeout as u64))).await;
        if !stopped {
            self.emit(&rec, "kill", &[("signal", "9".into())]);
            let _ = self.signal(&rec, 9, true).await;
            if !Self::wait_exit(e, exits, Some(Duration::from_secs(30))).await {
                return Err(ContainerError::Internal(format!("container {} did not exit after SIGKILL", rec.id)));
            }
        }
        self.emit(&e.record(), "stop", &[]);
        Ok(())
    }
}
