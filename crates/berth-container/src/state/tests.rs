//! The state machine's table, every status × every event, and the persisted form.

use super::*;
use Event as E;
use Status as S;

/// Each event with the status it leads to, or `None` when it is refused.
type Row = [(E, Option<S>); 8];

/// What each event does from each status.
const TABLE: [(S, Row); 7] = [
    (
        S::Created,
        [
            (E::Start, Some(S::Running)),
            (E::Exit, None),
            (E::Lost, None),
            (E::Pause, None),
            (E::Unpause, None),
            (E::ScheduleRestart, None),
            (E::CancelRestart, None),
            (E::Remove, Some(S::Removing)),
        ],
    ),
    (
        S::Running,
        [
            (E::Start, None),
            (E::Exit, Some(S::Exited)),
            (E::Lost, Some(S::Exited)),
            (E::Pause, Some(S::Paused)),
            (E::Unpause, None),
            (E::ScheduleRestart, None),
            (E::CancelRestart, None),
            (E::Remove, None),
        ],
    ),
    (
        S::Paused,
        [
            (E::Start, None),
            (E::Exit, Some(S::Exited)),
            (E::Lost, Some(S::Exited)),
            (E::Pause, None),
            (E::Unpause, Some(S::Running)),
            (E::ScheduleRestart, None),
            (E::CancelRestart, None),
            (E::Remove, None),
        ],
    ),
    (
        S::Restarting,
        [
            (E::Start, Some(S::Running)),
            (E::Exit, None),
            (E::Lost, Some(S::Exited)),
            (E::Pause, None),
            (E::Unpause, None),
            (E::ScheduleRestart, None),
            (E::CancelRestart, Some(S::Exited)),
            (E::Remove, Some(S::Removing)),
        ],
    ),
    (
        S::Removing,
        [
            (E::Start, None),
            (E::Exit, None),
            (E::Lost, None),
            (E::Pause, None),
            (E::Unpause, None),
            (E::ScheduleRestart, None),
            (E::CancelRestart, None),
            (E::Remove, Some(S::Removing)),
        ],
    ),
    (
        S::Exited,
        [
            (E::Start, Some(S::Running)),
            (E::Exit, None),
            (E::Lost, None),
            (E::Pause, None),
            (E::Unpause, None),
            (E::ScheduleRestart, Some(S::Restarting)),
            (E::CancelRestart, None),
            (E::Remove, Some(S::Removing)),
        ],
    ),
    (
        S::Dead,
        [
            (E::Start, None),
            (E::Exit, None),
            (E::Lost, None),
            (E::Pause, None),
            (E::Unpause, None),
            (E::ScheduleRestart, None),
            (E::CancelRestart, None),
            (E::Remove, Some(S::Removing)),
        ],
    ),
];

fn in_status(status: S) -> State {
    State { status, pid: 42, exit_code: 3, started_at: "2026-12-07T10:00:00Z".into(), ..State::created() }
}

/// Applies `event` through the method that names it.
fn fire(st: &mut State, event: E) -> Result<(), StateError> {
    let ended = Ended { exit_code: 7, finished_at: "2026-12-07T10:00:05Z".into(), oom_killed: true };
    match event {
        E::Start => st.start(99, "2026-12-07T11:00:00Z".into()),
        E::Exit => st.exit(&ended),
        E::Lost => st.lost(&ended),
        E::Pause => st.pause(),
        E::Unpause => st.unpause(),
        E::ScheduleRestart => st.schedule_restart(),
        E::CancelRestart => st.cancel_restart(),
        E::Remove => st.remove(),
    }
}

#[test]
fn the_table_covers_every_status_and_every_event() {
    let statuses: Vec<S> = TABLE.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, S::ALL);
    for (_, row) in TABLE {
        let events: Vec<E> = row.iter().map(|(e, _)| *e).collect();
        assert_eq!(events, E::ALL);
    }
}

#[test]
fn every_status_and_event_gives_the_next_status_or_a_typed_error() {
    for (from, row) in TABLE {
        for (event, want) in row {
            let got = next(from, event);
            match want {
                Some(to) => assert_eq!(got, Ok(to), "{from} + {event}"),
                None => assert_eq!(got, Err(StateError { from, event }), "{from} + {event}"),
            }
            // The method agrees with the table, and a refused event changes nothing.
            let mut st = in_status(from);
            let before = st.clone();
            let r = fire(&mut st, event);
            match want {
                Some(to) => {
                    assert_eq!(r, Ok(()), "{from} + {event}");
                    assert_eq!(st.status(), to, "{from} + {event}");
                }
                None => {
                    assert_eq!(r, Err(StateError { from, event }), "{from} + {event}");
                    assert_eq!(st, before, "{from} + {event}");
                }
            }
            assert_eq!(st.check(event).is_ok(), next(st.status(), event).is_ok());
        }
    }
}

#[test]
fn a_refused_event_says_what_and_from_where() {
    let e = in_status(S::Paused).clone().start(1, String::new()).unwrap_err();
    assert_eq!(e.to_string(), "cannot start a container that is paused");
}

#[test]
fn start_and_exit_record_what_happened() {
    let mut st = State::created();
    st.health = Some(Health { status: "healthy".into(), ..Health::default() });
    st.start(1234, "2026-12-07T10:00:00Z".into()).unwrap();
    assert_eq!((st.pid, st.exit_code, st.started_at.as_str()), (1234, 0, "2026-12-07T10:00:00Z"));
    // The shim stamped the finish before the daemon stamped the start: no negative run.
    let early = Ended { exit_code: 137, finished_at: "2026-12-07T09:59:59Z".into(), oom_killed: true };
    st.exit(&early).unwrap();
    assert_eq!(st.status(), S::Exited);
    assert_eq!((st.pid, st.exit_code, st.oom_killed), (0, 137, true));
    assert_eq!(st.finished_at, st.started_at);
    assert_eq!(st.health.as_ref().map(|h| h.status.as_str()), Some("unhealthy"));
    st.error = "last start failed".into();
    st.start(1, "2026-12-07T10:01:00Z".into()).unwrap();
    assert!(st.error.is_empty() && !st.oom_killed);
}

#[test]
fn the_api_booleans_follow_the_status() {
    // (status, Running, Paused, Restarting, Dead)
    let want = [
        (S::Created, false, false, false, false),
        (S::Running, true, false, false, false),
        (S::Paused, true, true, false, false),
        (S::Restarting, false, false, true, false),
        (S::Removing, false, false, false, false),
        (S::Exited, false, false, false, false),
        (S::Dead, false, false, false, true),
    ];
    for (status, running, paused, restarting, dead) in want {
        let api = ContainerState::from(&in_status(status));
        assert_eq!(api.status, status.as_str());
        assert_eq!(
            (api.running, api.paused, api.restarting, api.dead),
            (running, paused, restarting, dead),
            "{status}"
        );
        assert_eq!(Status::parse(&api.status), Some(status));
        // The API's form loads back as the same state.
        assert_eq!(State::from(api), in_status(status));
    }
}

#[test]
fn a_state_without_a_known_word_is_read_from_its_booleans() {
    let cases = [
        (ContainerState::default(), S::Created),
        (ContainerState { running: true, ..Default::default() }, S::Running),
        (ContainerState { running: true, paused: true, ..Default::default() }, S::Paused),
        (ContainerState { restarting: true, ..Default::default() }, S::Restarting),
        (ContainerState { dead: true, ..Default::default() }, S::Dead),
        (ContainerState { status: "sleeping".into(), running: true, ..Default::default() }, S::Running),
    ];
    for (api, want) in cases {
        assert_eq!(State::from(api.clone()).status(), want, "{api:?}");
    }
}

/// A container record as berth wrote it before the state was typed (the state is the API's
/// `ContainerState`, its booleans stored beside the word).
const OLD_RECORD: &str = include_str!("old_record.json");

#[test]
fn a_record_written_by_the_old_code_loads_and_saves_in_the_same_form() {
    let rec: crate::Record = serde_json::from_str(OLD_RECORD).unwrap();
    assert_eq!(rec.id, "4f1d2c3b5a697887766554433221100ffeeddccbbaa99887766554433221100a");
    assert_eq!(rec.state.status(), S::Paused);
    assert!(rec.state.is_running() && rec.state.is_paused());
    assert_eq!((rec.state.pid, rec.state.exit_code), (4242, 0));
    assert_eq!(rec.state.started_at, "2026-12-01T08:30:00.123456789Z");
    assert_eq!(rec.state.health.as_ref().map(|h| h.failing_streak), Some(2));
    // Saved again, the state is what the old code wrote, key for key.
    let old: serde_json::Value = serde_json::from_str(OLD_RECORD).unwrap();
    let new = serde_json::to_value(&rec).unwrap();
    assert_eq!(new["state"], old["state"]);
    // And a restart pending then (Running false, as berth recorded it) is still one.
    let mut v = old.clone();
    v["state"]["Status"] = "restarting".into();
    v["state"]["Running"] = false.into();
    v["state"]["Paused"] = false.into();
    v["state"]["Restarting"] = true.into();
    let rec: crate::Record = serde_json::from_value(v).unwrap();
    assert_eq!(rec.state.status(), S::Restarting);
    assert!(!rec.state.is_running());
}
