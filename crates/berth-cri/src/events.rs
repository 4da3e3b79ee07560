//! GetContainerEvents: the lifecycle of pods and their containers as a stream, which
//! kubelet's evented PLEG follows instead of listing everything every second.
//!
//! The events are the daemon's own (the bus behind `docker events`), narrowed to the CRI's
//! objects: `create`, `start`, `die` and `destroy` of a pod's holder or of a container become
//! CREATED, STARTED, STOPPED and DELETED. As containerd does, each carries the pod's status
//! and the statuses of all its containers at the time it is sent (none once the pod is gone);
//! a pod's own events name the pod's ID as the container.

use std::sync::Arc;

use berth_api::models::EventMessage;
use berth_container::record::NAMESPACE_LABEL;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::Cri;
use crate::meta::{KIND_LABEL, NAMESPACE, SANDBOX_LABEL};
use crate::proto::{ContainerEventResponse, ContainerEventType};

/// The stream tonic's generated trait takes.
pub type EventStream = tonic::codegen::BoxStream<ContainerEventResponse>;

/// Events a slow reader may fall behind by before it is told to list again.
const QUEUE: usize = 256;

/// The CRI event an event of the bus stands for, with the pod it belongs to.
fn translate(ev: &EventMessage) -> Option<(ContainerEventType, String)> {
    if ev.kind != "container" {
        return None;
    }
    let attrs = &ev.actor.attributes;
    if attrs.get(NAMESPACE_LABEL).map(String::as_str) != Some(NAMESPACE) {
        return None;
    }
    let pod = match attrs.get(KIND_LABEL).map(String::as_str) {
        Some("sandbox") => ev.actor.id.clone(),
        Some("container") => attrs.get(SANDBOX_LABEL)?.clone(),
        _ => return None,
    };
    let kind = match ev.action.as_str() {
        "create" => ContainerEventType::ContainerCreatedEvent,
        "start" => ContainerEventType::ContainerStartedEvent,
        "die" => ContainerEventType::ContainerStoppedEvent,
        "destroy" => ContainerEventType::ContainerDeletedEvent,
        _ => return None,
    };
    Some((kind, pod))
}

impl Cri {
    fn event(&self, ev: &EventMessage) -> Option<ContainerEventResponse> {
        let (kind, pod) = translate(ev)?;
        let pod_sandbox_status = self.pod_sandbox_status(&pod, false).ok().map(|(s, _)| s);
        let containers_statuses = self
            .containers_in(&pod)
            .iter()
            .filter_map(|c| self.container_status(&c.id, false).ok().map(|(s, _)| s))
            .collect();
        Some(ContainerEventResponse {
            container_id: ev.actor.id.clone(),
            container_event_type: kind as i32,
            created_at: ev.time_nano,
            pod_sandbox_status,
            containers_statuses,
        })
    }

    /// Every CRI event from now on, until the client goes away. A client that falls so far
    /// behind that events were lost gets an error (kubelet then lists everything and asks
    /// again) rather than a stream with holes.
    pub fn container_events(self: &Arc<Self>) -> EventStream {
        let mut bus = self.containers.events.subscribe();
        let (tx, rx) = mpsc::channel(QUEUE);
        let cri = self.clone();
        tokio::spawn(async move {
            loop {
                let ev = tokio::select! {
                    _ = tx.closed() => return,
                    ev = bus.recv() => ev,
                };
                let reply = match ev {
                    Ok(ev) => match cri.event(&ev) {
                        Some(r) => Ok(r),
                        None => continue,
                    },
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        Err(Status::resource_exhausted(format!("the event stream fell {n} events behind")))
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let end = reply.is_err();
                if tx.send(reply).await.is_err() || end {
                    return;
                }
            }
        });
        Box::pin(ReceiverStream::new(rx))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use berth_api::models::EventActor;

    use super::*;

    fn ev(action: &str, id: &str, attrs: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            kind: "container".into(),
            action: action.into(),
            actor: EventActor {
                id: id.into(),
                attributes: attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            },
            ..Default::default()
        }
    }

    #[test]
    fn only_the_cri_objects_lifecycle_becomes_events() {
        let ns = (NAMESPACE_LABEL, NAMESPACE);
        let c = [ns, (KIND_LABEL, "container"), (SANDBOX_LABEL, "pod1")];
        assert_eq!(translate(&ev("start", "c1", &c)), Some((ContainerEventType::ContainerStartedEvent, "pod1".into())));
        assert_eq!(translate(&ev("die", "c1", &c)), Some((ContainerEventType::ContainerStoppedEvent, "pod1".into())));
        let s = [ns, (KIND_LABEL, "sandbox")];
        assert_eq!(
            translate(&ev("destroy", "pod1", &s)),
            Some((ContainerEventType::ContainerDeletedEvent, "pod1".into()))
        );
        assert_eq!(
            translate(&ev("create", "pod1", &s)),
            Some((ContainerEventType::ContainerCreatedEvent, "pod1".into()))
        );
        // Docker's containers, other actions and other kinds are not the CRI's.
        assert_eq!(translate(&ev("start", "d1", &[])), None);
        assert_eq!(translate(&ev("attach", "c1", &c)), None);
        assert_eq!(translate(&EventMessage { kind: "network".into(), ..ev("create", "n", &c) }), None);
    }
}
