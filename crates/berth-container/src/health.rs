//! HEALTHCHECK: a probe run in the container now and then, its results kept in
//! `State.Health` (status, failing streak, the last five results) and announced as
//! `health_status: …` events, as Docker does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_api::models::{HealthConfig, HealthLog};

use crate::collect::Keep;
use crate::{ContainerService, Entry};

/// Docker's defaults for what the image or `--health-*` leave at zero.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// Docker keeps this many results, and this much of each probe's output.
const KEEP_RESULTS: usize = 5;
const MAX_OUTPUT: usize = 4096;

fn nanos(n: i64, default: Duration) -> Duration {
    if n > 0 { Duration::from_nanos(n as u64) } else { default }
}

/// The command a healthcheck runs, or `None` when there is none (`NONE`, or no test).
pub fn probe_command(h: &HealthConfig) -> Option<Vec<String>> {
    let test = h.test.as_ref()?;
    match test.first().map(String::as_str) {
        Some("CMD") if test.len() > 1 => Some(test[1..].to_vec()),
        Some("CMD-SHELL") if test.len() > 1 => Some(vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")]),
        _ => None,
    }
}

impl ContainerService {
    /// Starts probing a container that has just started (or was re-adopted). The loop ends
    /// with this run of the container.
    pub(crate) fn start_health(self: &Arc<Self>, e: &Arc<Entry>) {
        let rec = e.record();
        let Some(hc) = rec.config.healthcheck.clone() else { return };
        let Some(cmd) = probe_command(&hc) else { return };
        let svc = self.clone();
        let entry = e.clone();
        let run = e.life.borrow().exits;
        tokio::spawn(async move {
            let began = Instant::now();
            let start_period = nanos(hc.start_period, Duration::ZERO);
            let retries = if hc.retries > 0 { hc.retries } else { DEFAULT_RETRIES };
            loop {
                let starting = began.elapsed() < start_period;
                let wait = if starting && hc.start_interval > 0 {
                    nanos(hc.start_interval, DEFAULT_START_INTERVAL)
                } else {
                    nanos(hc.interval, DEFAULT_INTERVAL)
                };
                tokio::time::sleep(wait).await;
                let alive = {
                    let l = entry.life.borrow();
                    l.running && l.exits == run && !l.removed
                };
                if !alive {
                    return;
                }
                if entry.record().state.is_paused() {
                    continue;
                }
                let start = berth_api::time::rfc3339_now();
                let (code, output) = svc.probe(&entry.id, &cmd, nanos(hc.timeout, DEFAULT_TIMEOUT)).await;
                let result = HealthLog { start, end: berth_api::time::rfc3339_now(), exit_code: code, output };
                let starting = began.elapsed() < start_period;
                let mut changed = None;
                entry.update(|r| {
                    if !r.state.is_running() {
                        return;
                    }
                    let h = r.state.health.get_or_insert_with(Default::default);
                    let before = h.status.clone();
                    if code == 0 {
                        h.status = "healthy".into();
                        h.failing_streak = 0;
                    } else if !starting {
                        // Failures inside the start period do not count.
                        h.failing_streak += 1;
                        if h.failing_streak >= retries {
                            h.status = "unhealthy".into();
                        }
                    }
                    h.log.push(result.clone());
                    if h.log.len() > KEEP_RESULTS {
                        let extra = h.log.len() - KEEP_RESULTS;
                        h.log.drain(..extra);
                    }
                    if h.status != before {
                        changed = Some(h.status.clone());
                    }
                });
                svc.persist_or_log(&entry);
                if let Some(status) = changed {
                    svc.emit(&entry.record(), &format!("health_status: {status}"), &[]);
                }
            }
        });
    }

    /// Runs one probe: its exit code and output, or -1 when it could not run or timed out.
    async fn probe(self: &Arc<Self>, id: &str, cmd: &[String], timeout: Duration) -> (i64, String) {
        match self.exec_collect(id, cmd.to_vec(), Keep::Merged(MAX_OUTPUT), Some(timeout)).await {
            Ok(c) if c.timed_out => (-1, format!("Health check exceeded timeout ({}s)", timeout.as_secs_f64())),
            Ok(c) => (c.exit_code.unwrap_or(-1), String::from_utf8_lossy(&c.stdout).into_owned()),
            Err(e) => (-1, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_commands_follow_dockers_forms() {
        let h =
            |t: &[&str]| HealthConfig { test: Some(t.iter().map(|s| s.to_string()).collect()), ..Default::default() };
        assert_eq!(probe_command(&h(&["CMD", "true", "x"])), Some(vec!["true".to_string(), "x".to_string()]));
        assert_eq!(
            probe_command(&h(&["CMD-SHELL", "exit 1"])),
            Some(vec!["/bin/sh".to_string(), "-c".to_string(), "exit 1".to_string()])
        );
        assert_eq!(probe_command(&h(&["NONE"])), None);
        assert_eq!(probe_command(&HealthConfig::default()), None);
    }
}
