//! The event bus behind `GET /events`: every service publishes here, every listener gets
//! what is published after it subscribed, plus a bounded backlog for `--since`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use berth_api::models::{EventActor, EventMessage};
use tokio::sync::broadcast;

const BACKLOG: usize = 1024;

pub struct EventBus {
    tx: broadcast::Sender<EventMessage>,
    backlog: Mutex<VecDeque<EventMessage>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus { tx: broadcast::channel(4096).0, backlog: Mutex::new(VecDeque::new()) }
    }
}

impl EventBus {
    /// Publishes an event of `kind` (container, image, network, volume, daemon).
    pub fn emit(&self, kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        let nanos = berth_api::time::now_nanos() as i64;
        let mut ev = EventMessage {
            kind: kind.to_string(),
            action: action.to_string(),
            actor: EventActor { id: id.to_string(), attributes },
            scope: "local".into(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
            ..Default::default()
        };
        if kind == "container" || kind == "image" {
            ev.status = action.to_string();
            ev.id = id.to_string();
            if let Some(img) = ev.actor.attributes.get("image") {
                ev.from = img.clone();
            }
        }
        {
            let mut b = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
            if b.len() == BACKLOG {
                b.pop_front();
            }
            b.push_back(ev.clone());
        }
        let _ = self.tx.send(ev);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EventMessage> {
        self.tx.subscribe()
    }

    /// Past events still remembered, oldest first.
    pub fn backlog(&self) -> Vec<EventMessage> {
        self.backlog.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }
}
