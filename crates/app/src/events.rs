//! Live events of groups (`joined`, `full`, `drawn`, `expired`) for everyone watching, on every instance.
//!
//! Use cases publish after their transaction commits. On SQLite (one instance) events go straight to this
//! process's watchers. On PostgreSQL they go out as `NOTIFY` and come back to every instance, this one included,
//! through its one listener, which hands them to its watchers; when the listener loses its connection it tells
//! them to refetch (`Resync`), since notifications are never replayed. One task per instance sends them, in the
//! order they were published, coalescing whatever queued while its last `NOTIFY` was in flight into the next one:
//! under load one transaction carries many events instead of each join paying for a transaction of its own.
//!
//! The same listener hears the stale keys of rows this instance may cache (`caches.rs`): it forgets them, and
//! while it does not listen the caches are not used.

use crate::App;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tuangou_store::Heard;

/// One thing that happened to a group, or to a voucher. Small on purpose: watchers refetch for details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEvent {
    /// `joined`, `full`, `drawn` or `expired`; for a voucher, `redeemed` or `undone`.
    pub kind: String,
    /// The group's id; empty for a voucher's event, so no group's or campaign's stream carries it.
    pub group_id: String,
    pub campaign_id: String,
    pub status: String,
    pub member_count: i64,
    /// The voucher a `redeemed` or `undone` event is about: only its owner's stream carries it (the voucher page
    /// shows its redemption as it happens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voucher_id: Option<String>,
}

impl GroupEvent {
    /// A voucher's event: `redeemed` or `undone`.
    pub(crate) fn of_voucher(kind: &str, voucher: &tuangou_store::VoucherRow) -> Self {
        GroupEvent {
            kind: kind.into(),
            group_id: String::new(),
            campaign_id: String::new(),
            status: voucher.status.clone(),
            member_count: 0,
            voucher_id: Some(voucher.id.clone()),
        }
    }
}

/// What watchers receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusMessage {
    Event(GroupEvent),
    /// Events may have been missed: refetch.
    Resync,
}

/// This process's fan-out to its watchers, and (on PostgreSQL) its queue of events to send.
#[derive(Clone)]
pub struct Events {
    sender: broadcast::Sender<BusMessage>,
    /// The sending task's queue, started with the first event.
    outbox: Arc<OnceLock<mpsc::UnboundedSender<String>>>,
}

impl Default for Events {
    fn default() -> Self {
        Self { sender: broadcast::channel(4_096).0, outbox: Arc::default() }
    }
}

/// The most events one `NOTIFY` statement carries.
const EVENTS_PER_NOTIFY: usize = 100;

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

    /// How many receivers (event streams) this instance has open.
    pub fn watchers(&self) -> usize {
        self.events.sender.receiver_count()
    }

    /// Publishes events after their transaction committed (on PostgreSQL: queues them for the sending task, so
    /// the answer does not wait for them). Never fails the use case: a lost event is healed by watchers refetching.
    pub(crate) fn publish(&self, events: Vec<GroupEvent>) {
        if !self.store.shares_events() {
            for event in events {
                self.events.deliver(BusMessage::Event(event));
            }
            return;
        }
        let outbox = self.events.outbox.get_or_init(|| self.start_sending());
        for event in &events {
            let _ = outbox.send(serde_json::to_string(event).unwrap_or_default());
        }
    }

    /// Starts the task that sends this instance's events, in order, as few `NOTIFY`s as the load allows. It ends
    /// when the last handle to the app is gone.
    fn start_sending(&self) -> mpsc::UnboundedSender<String> {
        let (outbox, mut queue) = mpsc::unbounded_channel::<String>();
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut payloads = Vec::with_capacity(EVENTS_PER_NOTIFY);
            while queue.recv_many(&mut payloads, EVENTS_PER_NOTIFY).await > 0 {
                if let Err(error) = store.notify(&payloads).await {
                    tracing::warn!(%error, events = payloads.len(), "could not send events to the other instances");
                }
                payloads.clear();
            }
        });
        outbox
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
        // From now on every change reaches this instance: its caches may be used.
        self.caches.trust(first.is_some());
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
                    self.caches.trust(true);
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
                    Ok(Heard::Stale(stale)) => self.caches.forget(&stale),
                    // Changes may have been missed while the connection was down: the caches start again empty,
                    // once a new listener listens (it is listening when it is returned).
                    Ok(Heard::Reconnected) => {
                        self.caches.trust(false);
                        listener = self.store.listen().await.ok().flatten();
                        self.caches.trust(listener.is_some());
                        self.events.deliver(BusMessage::Resync);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "event listener lost its connection");
                        self.caches.trust(false);
                        listener = None;
                        self.events.deliver(BusMessage::Resync);
                    }
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}
