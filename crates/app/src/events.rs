//! Live events of groups (`joined`, `full`, `drawn`, `expired`) for everyone watching, on every instance.
//!
//! Use cases publish after their transaction commits. On SQLite (one instance) events go straight to this
//! process's watchers. On PostgreSQL they go out as `NOTIFY` and come back to every instance, this one included,
//! through its one listener, which hands them to its watchers; when the listener loses its connection it tells
//! them to refetch (`Resync`), since notifications are never replayed.

use crate::App;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tuangou_store::Heard;

/// One thing that happened to a group. Small on purpose: watchers refetch the group for details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEvent {
    /// `joined`, `full`, `drawn` or `expired`.
    pub kind: String,
    pub group_id: String,
    pub campaign_id: String,
    pub status: String,
    pub member_count: i64,
}

/// What watchers receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusMessage {
    Event(GroupEvent),
    /// Events may have been missed: refetch.
    Resync,
}

/// This process's fan-out to its watchers.
#[derive(Clone)]
pub struct Events {
    sender: broadcast::Sender<BusMessage>,
}

impl Default for Events {
    fn default() -> Self {
        Self { sender: broadcast::channel(4_096).0 }
    }
}

impl Events {
    fn deliver(&self, message: BusMessage) {
        // No watcher is not an error.
        let _ = self.sender.send(message);
    }
}

impl App {
    /// A receiver of every event this instance hears. A slow receiver gets `Lagged` and should resync.
    pub fn subscribe(&self) -> broadcast::Receiver<BusMessage> {
        self.events.sender.subscribe()
    }

    /// Publishes events after their transaction committed. Never fails the use case: a lost event is healed by
    /// watchers refetching.
    pub(crate) async fn publish(&self, events: Vec<GroupEvent>) {
        if !self.store.shares_events() {
            for event in events {
                self.events.deliver(BusMessage::Event(event));
            }
            return;
        }
        let payloads: Vec<String> = events.iter().map(|e| serde_json::to_string(e).unwrap_or_default()).collect();
        if let Err(error) = self.store.notify(&payloads).await {
            tracing::warn!(%error, "could not send events to the other instances");
        }
    }

    /// On PostgreSQL, connects the listener (returning once it listens) and keeps it running until `shutdown`;
    /// on SQLite there is nothing to do.
    pub async fn start_event_listener(&self, shutdown: watch::Receiver<bool>) -> Option<tokio::task::JoinHandle<()>> {
        if !self.store.shares_events() {
            return None;
        }
        let first = match self.store.listen().await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "event listener could not connect; retrying in the background");
                None
            }
        };
        let app = self.clone();
        Some(tokio::spawn(async move { app.listen_for_events(first, shutdown).await }))
    }

    async fn listen_for_events(
        &self,
        mut listener: Option<tuangou_store::EventListener>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let Some(active) = listener.as_mut() else {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
                listener = self.store.listen().await.ok().flatten();
                if listener.is_some() {
                    self.events.deliver(BusMessage::Resync);
                }
                continue;
            };
            tokio::select! {
                heard = active.next() => match heard {
                    Ok(Heard::Payload(payload)) => match serde_json::from_str::<GroupEvent>(&payload) {
                        Ok(event) => self.events.deliver(BusMessage::Event(event)),
                        Err(error) => tracing::warn!(%error, "ignoring a malformed event"),
                    },
                    Ok(Heard::Reconnected) => self.events.deliver(BusMessage::Resync),
                    Err(error) => {
                        tracing::warn!(%error, "event listener lost its connection");
                        listener = None;
                        self.events.deliver(BusMessage::Resync);
                    }
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}
