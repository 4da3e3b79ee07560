//! A container's state: one [`Status`] and the transitions between statuses, as moby's
//! `daemon/container/state.go` keeps it.
//!
//! # Contract
//!
//! - **The status changes only through a transition** ([`State::start`], [`State::exit`],
//!   [`State::lost`], [`State::pause`], [`State::unpause`], [`State::schedule_restart`],
//!   [`State::cancel_restart`], [`State::remove`]). Each refuses an event its status does not
//!   allow with a [`StateError`] and then changes nothing; [`next`] is the whole table.
//! - **Strings are for the wire.** The API's status word and its `Running`, `Paused`,
//!   `Restarting` and `Dead` booleans are derived from the status in one place
//!   (`From<&State> for ContainerState`). `Running` is true while paused, as in Docker; it is
//!   false while a restart is pending (berth has no process then, and always said so).
//! - **The persisted form is the API's** (`ContainerState`, as every earlier berth wrote it),
//!   so records written before this type existed load, and records written now load in an
//!   older berth. Loading takes the status word; a record without one (or with a word berth
//!   does not know) is read from its booleans.
//!
//! ```text
//!            start                 pause
//!  created ─────────► running ◄──────────► paused
//!                      ▲   │ exit / lost     │ exit / lost
//!               start  │   ▼                 │
//!  restarting ◄─────── exited ◄──────────────┘
//!      │ schedule_restart ▲
//!      └─────────────────┘ cancel_restart, lost
//!  remove: created, exited, restarting, dead, removing ──► removing
//! ```

use berth_api::models::{ContainerState, Health};
use serde::{Deserialize, Serialize};

/// Docker's status words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    /// The process exited and the restart policy will start it again.
    Restarting,
    /// `docker rm` is under way.
    Removing,
    Exited,
    /// A removal failed half-way (set by dockerd; berth only reads it).
    Dead,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Created,
        Status::Running,
        Status::Paused,
        Status::Restarting,
        Status::Removing,
        Status::Exited,
        Status::Dead,
    ];

    /// The word the API and `docker ps --filter status=` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Its process started.
    Start,
    /// Its process ended (the shim said so).
    Exit,
    /// The daemon, starting, found no process for a container it had recorded as up or
    /// about to restart: it ended while the daemon was away.
    Lost,
    Pause,
    Unpause,
    /// The restart policy will start it again after its back-off.
    ScheduleRestart,
    /// A pending restart was stopped, or its start failed.
    CancelRestart,
    /// `docker rm` began.
    Remove,
}

impl Event {
    pub const ALL: [Event; 8] = [
        Event::Start,
        Event::Exit,
        Event::Lost,
        Event::Pause,
        Event::Unpause,
        Event::ScheduleRestart,
        Event::CancelRestart,
        Event::Remove,
    ];
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Event::Start => "start",
            Event::Exit => "exit",
            Event::Lost => "lose",
            Event::Pause => "pause",
            Event::Unpause => "unpause",
            Event::ScheduleRestart => "schedule a restart of",
            Event::CancelRestart => "cancel a restart of",
            Event::Remove => "remove",
        })
    }
}

/// An event the container's status does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event} a container that is {from}")]
pub struct StateError {
    pub from: Status,
    pub event: Event,
}

/// The transition table: the status after `event`, or why it cannot happen.
pub fn next(from: Status, event: Event) -> Result<Status, StateError> {
    use Event as E;
    use Status as S;
    Ok(match (event, from) {
        (E::Start, S::Created | S::Exited | S::Restarting) => S::Running,
        (E::Exit, S::Running | S::Paused) => S::Exited,
        (E::Lost, S::Running | S::Paused | S::Restarting) => S::Exited,
        (E::Pause, S::Running) => S::Paused,
        (E::Unpause, S::Paused) => S::Running,
        (E::ScheduleRestart, S::Exited) => S::Restarting,
        (E::CancelRestart, S::Restarting) => S::Exited,
        // Removing again retries a removal that did not finish (recovery does).
        (E::Remove, S::Created | S::Exited | S::Restarting | S::Removing | S::Dead) => S::Removing,
        _ => return Err(StateError { from, event }),
    })
}

/// How a container's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub exit_code: i64,
    /// RFC 3339.
    pub finished_at: String,
    pub oom_killed: bool,
}

/// A container's state, persisted with its record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "ContainerState", into = "ContainerState")]
pub struct State {
    status: Status,
    pub pid: i64,
    pub exit_code: i64,
    /// Why the last start failed (empty after a start).
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
    pub health: Option<Health>,
}

impl State {
    /// A container just created: never started, never finished (Docker's zero times).
    pub fn created() -> State {
        State {
            started_at: berth_api::time::ZERO_TIME.into(),
            finished_at: berth_api::time::ZERO_TIME.into(),
            ..State::default()
        }
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// Whether a process is there: running or paused (Docker's `State.Running`).
    pub fn is_running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Paused)
    }

    pub fn is_paused(&self) -> bool {
        self.status == Status::Paused
    }

    pub fn is_restarting(&self) -> bool {
        self.status == Status::Restarting
    }

    /// Whether `event` is allowed now.
    pub fn check(&self, event: Event) -> Result<(), StateError> {
        next(self.status, event).map(|_| ())
    }

    fn apply(&mut self, event: Event) -> Result<(), StateError> {
        self.status = next(self.status, event)?;
        Ok(())
    }

    /// The process `pid` started at `now` (RFC 3339).
    pub fn start(&mut self, pid: i64, now: String) -> Result<(), StateError> {
        self.apply(Event::Start)?;
        self.pid = pid;
        self.exit_code = 0;
        self.error.clear();
        self.started_at = now;
        self.oom_killed = false;
        Ok(())
    }

    /// The process ended.
    pub fn exit(&mut self, how: &Ended) -> Result<(), StateError> {
        self.apply(Event::Exit)?;
        self.ended(how);
        Ok(())
    }

    /// Recovery found no process for a container recorded as up or restarting.
    pub fn lost(&mut self, how: &Ended) -> Result<(), StateError> {
        self.apply(Event::Lost)?;
        self.ended(how);
        Ok(())
    }

    fn ended(&mut self, how: &Ended) {
        self.pid = 0;
        self.exit_code = how.exit_code;
        // A process that exits at once is reaped by the shim (which stamps the finish)
        // before the daemon has stamped the start: a container never ends before it began.
        let started = berth_api::time::parse_rfc3339(&self.started_at);
        self.finished_at = match berth_api::time::parse_rfc3339(&how.finished_at) {
            Some(f) if started.is_some_and(|s| f < s) => self.started_at.clone(),
            _ => how.finished_at.clone(),
        };
        self.oom_killed = how.oom_killed;
        // As Docker: a stopped container's last health results stay, marked unhealthy.
        if let Some(h) = self.health.as_mut() {
            h.status = "unhealthy".into();
        }
    }

    pub fn pause(&mut self) -> Result<(), StateError> {
        self.apply(Event::Pause)
    }

    pub fn unpause(&mut self) -> Result<(), StateError> {
        self.apply(Event::Unpause)
    }

    pub fn schedule_restart(&mut self) -> Result<(), StateError> {
        self.apply(Event::ScheduleRestart)
    }

    pub fn cancel_restart(&mut self) -> Result<(), StateError> {
        self.apply(Event::CancelRestart)
    }

    pub fn remove(&mut self) -> Result<(), StateError> {
        self.apply(Event::Remove)
    }
}

/// The API's view: the status word and booleans derived from the status, here only.
impl From<&State> for ContainerState {
    fn from(s: &State) -> ContainerState {
        ContainerState {
            status: s.status.as_str().to_string(),
            running: s.is_running(),
            paused: s.status == Status::Paused,
            restarting: s.status == Status::Restarting,
            dead: s.status == Status::Dead,
            oom_killed: s.oom_killed,
            pid: s.pid,
            exit_code: s.exit_code,
            error: s.error.clone(),
            started_at: s.started_at.clone(),
            finished_at: s.finished_at.clone(),
            health: s.health.clone(),
        }
    }
}

impl From<State> for ContainerState {
    fn from(s: State) -> ContainerState {
        ContainerState::from(&s)
    }
}

/// Loading a persisted record: the status word rules; without a known one, the booleans.
impl From<ContainerState> for State {
    fn from(c: ContainerState) -> State {
        let status = Status::parse(&c.status).unwrap_or(if c.dead {
            Status::Dead
        } else if c.running && c.paused {
            Status::Paused
        } else if c.running {
            Status::Running
        } else if c.restarting {
            Status::Restarting
        } else {
            Status::Created
        });
        State {
            status,
            pid: c.pid,
            exit_code: c.exit_code,
            error: c.error,
            started_at: c.started_at,
            finished_at: c.finished_at,
            oom_killed: c.oom_killed,
            health: c.health,
        }
    }
}

#[cfg(test)]
mod tests;
