//! Payments in the store, on both backends: our payments and their notifications (stored once, applied exactly
//! once by concurrent workers), and the sandbox provider's books, which a reopened store (a restart, a `kill -9`)
//! finds as they were.

use std::sync::Arc;
use tuangou_domain::money::Fen;
use tuangou_domain::time::Millis;
use tuangou_store::{
    EventApplied, NewPayment, NewPaymentEvent, NewSandboxNotification, NewSandboxPayment, NewUser, SandboxChange,
    Store, StoreError,
};
use tuangou_testkit::{Backend, TestDb, on_both_backends};

const NOW: Millis = Millis(1_764_174_600_000);

fn fen(value: i64) -> Fen {
    Fen::from_stored(value).unwrap()
}

async fn payer(store: &Store) -> tuangou_domain::ids::UserId {
    let user =
        NewUser {
            phone: "13700000001".into(), name: "付款人".into(), password_hash: "x".into(), is_operator: false
        };
    store.create_user(user, NOW).await.unwrap().user_id()
}

fn new_payment(user: &tuangou_domain::ids::UserId, amount: i64) -> NewPayment {
    NewPayment {
        id: tuangou_store::new_id(),
        provider: "sandbox".into(),
        user: user.clone(),
        membership: None,
        amount: fen(amount),
        description: "四人火锅".into(),
        expires_at: NOW.plus_seconds(300),
    }
}

fn event(payment: &str, event_id: &str, amount: i64) -> NewPaymentEvent {
    NewPaymentEvent {
        provider: "sandbox".into(),
        event_id: event_id.into(),
        payment_id: payment.into(),
        kind: "paid",
        amount: Some(fen(amount)),
        paid_at: Some(NOW),
        raw: format!(r#"{{"event_id":"{event_id}"}}"#),
    }
}

/// A notification is stored once however often it comes; concurrent workers apply each stored one exactly once,
/// and the payment becomes paid once.
async fn notifications_are_stored_once_and_applied_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    let user = payer(&store).await;
    let payment = store.create_payment(&new_payment(&user, 1_990), NOW).await.unwrap();
    assert_eq!((payment.status.as_str(), payment.client.as_deref()), ("created", None));
    assert!(matches!(
        store.create_payment(&NewPayment { id: payment.id.clone(), ..new_payment(&user, 5) }, NOW).await,
        Err(StoreError::Conflict("payment_exists"))
    ));
    let payment = store.set_payment_client(&payment.id, Some("sbx_1"), r#"{"url":"/sandbox/pay/1"}"#).await.unwrap();
    assert_eq!(payment.provider_trade_id.as_deref(), Some("sbx_1"));

    let (first, new) = store.record_payment_event(&event(&payment.id, "evt_1", 1_990), NOW).await.unwrap();
    assert!(new && first.status == "received");
    let (again, new) =
        store.record_payment_event(&event(&payment.id, "evt_1", 1_990), NOW.plus_seconds(1)).await.unwrap();
    assert!(!new, "the same event again is not stored again");
    assert_eq!(again, first);
    // Two more events about the same payment (a duplicate under another id, say).
    for id in ["evt_2", "evt_3"] {
        store.record_payment_event(&event(&payment.id, id, 1_990), NOW).await.unwrap();
    }
    assert_eq!(store.payment_events_of(&payment.id).await.unwrap().len(), 3);

    let applied = Arc::new(std::sync::Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (store, applied) = (store.clone(), applied.clone());
            tokio::spawn(async move {
                while let Some((event, outcome, payment)) =
                    store.apply_next_payment_event(NOW.plus_seconds(2), |_| Ok(NOW)).await.unwrap()
                {
                    assert_eq!(payment.status, "paid");
                    assert!(matches!(outcome, EventApplied::Paid(_)), "{outcome:?}");
                    applied.lock().unwrap().push(event.event_id);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let mut applied = applied.lock().unwrap().clone();
    applied.sort();
    assert_eq!(applied, ["evt_1", "evt_2", "evt_3"], "each event applied exactly once");
    let events = store.payment_events_of(&payment.id).await.unwrap();
    assert!(events.iter().all(|e| e.status == "applied" && e.applied_at == Some(NOW.plus_seconds(2).0)));
    let payment = store.payment(&payment.id).await.unwrap().unwrap();
    assert_eq!((payment.status.as_str(), payment.paid_at), ("paid", Some(NOW.0)));
    assert!(store.apply_next_payment_event(NOW, |_| Ok(NOW)).await.unwrap().is_none());
    store.close().await;
}

/// The sandbox's books: a payment is made once per out_trade_no, paid once, refunded at most its amount, each
/// refund and transfer once per our id; and all of it (the notification it still owes too) is there after the
/// store is closed and opened again on the same database.
async fn the_sandbox_keeps_its_books_across_a_restart(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    let new = NewSandboxPayment {
        out_trade_no: "our-1".into(),
        amount: fen(1_990),
        description: "四人火锅".into(),
        return_url: Some("/g/1".into()),
        expires_at: NOW.plus_seconds(300),
    };
    let created = store.sandbox_create_payment(&new, NOW).await.unwrap();
    assert!(created.id.starts_with("sbx_") && created.status == "created");
    assert_eq!(store.sandbox_create_payment(&new, NOW).await.unwrap(), created, "a retry answers the same");
    let reused = NewSandboxPayment { amount: fen(1), ..new.clone() };
    assert!(matches!(
        store.sandbox_create_payment(&reused, NOW).await,
        Err(StoreError::Conflict("out_trade_no_reused"))
    ));
    let refund = |out: &'static str, amount: i64| {
        let store = store.clone();
        async move { store.sandbox_refund("our-1", out, fen(amount), "not drawn", false, NOW).await }
    };
    assert!(matches!(refund("r0", 100).await, Err(StoreError::Conflict("not_paid"))));

    let pay = SandboxChange {
        out_trade_no: "our-1".into(),
        now: NOW.plus_seconds(10),
        late: false,
        notification: Some(NewSandboxNotification {
            id: "evt_1".into(),
            body: "{}".into(),
            status: "pending",
            due_at: NOW.plus_seconds(70),
        }),
    };
    let (paid, changed) = store.sandbox_pay(&pay).await.unwrap();
    assert!(changed && paid.status == "paid" && paid.paid_at == Some(NOW.plus_seconds(10).0));
    let (again, changed) = store.sandbox_pay(&SandboxChange { notification: None, ..pay.clone() }).await.unwrap();
    assert!(!changed && again == paid, "paying again changes nothing");
    let (still, closed) = store.sandbox_close(&SandboxChange { notification: None, ..pay.clone() }).await.unwrap();
    assert!(!closed && still.status == "paid", "a paid payment does not close");

    let first = refund("r1", 1_000).await.unwrap();
    assert_eq!(first.status, "processing");
    assert_eq!(refund("r1", 1_000).await.unwrap(), first, "the same refund id answers the same refund");
    assert!(matches!(refund("r1", 999).await, Err(StoreError::Conflict("out_refund_no_reused"))));
    assert!(matches!(refund("r2", 991).await, Err(StoreError::Conflict("refund_exceeds_payment"))));
    let failed = store.sandbox_refund("our-1", "r3", fen(990), "late", true, NOW).await.unwrap();
    assert_eq!(failed.status, "failed", "fail_refunds: the refund fails and holds nothing");
    let split = store.sandbox_transfer("split", "s1", Some("our-1"), "[]", fen(990), false, NOW).await.unwrap();
    assert_eq!(split.status, "processing");
    assert!(matches!(
        store.sandbox_transfer("split", "s2", Some("our-1"), "[]", fen(1), false, NOW).await,
        Err(StoreError::Conflict("split_exceeds_payment"))
    ));
    let payout = store.sandbox_transfer("payout", "p1", None, "merchant-1", fen(5_000), false, NOW).await.unwrap();
    assert_eq!(
        store.sandbox_transfer("payout", "p1", None, "merchant-1", fen(5_000), false, NOW).await.unwrap(),
        payout
    );
    assert_eq!(store.sandbox_settle(NOW, NOW.plus_seconds(20)).await.unwrap(), 3, "refund, split and payout");
    let before = db.fingerprint().await;
    store.close().await;
    drop(store);

    // A restart: the provider's state is as it was, and the notification it owes is still owed.
    let store = db.open().await;
    assert_eq!(db.fingerprint().await, before);
    let payment = store.sandbox_payment("our-1").await.unwrap().unwrap();
    assert_eq!((payment.status.as_str(), payment.refunded, payment.split), ("paid", 1_000, 990));
    assert_eq!(store.sandbox_payment(&payment.id).await.unwrap().unwrap(), payment, "by its own id too");
    assert_eq!(store.sandbox_refund_by("r1").await.unwrap().unwrap().status, "succeeded");
    assert!(store.sandbox_due_notifications(NOW.plus_seconds(69), 10).await.unwrap().is_empty(), "not due yet");
    let due = store.sandbox_due_notifications(NOW.plus_seconds(70), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    store.sandbox_notification_tried("evt_1", 2, true, None, None, NOW.plus_seconds(71)).await.unwrap();
    let sent = &store.sandbox_notifications_of("our-1").await.unwrap()[0];
    assert_eq!((sent.status.as_str(), sent.attempts, sent.sends), ("delivered", 1, 2));
    // A failed refund is tried again under the same id once the fault is gone; the failed one had held nothing.
    let retried = store.sandbox_refund("our-1", "r3", fen(990), "late", false, NOW).await;
    assert!(matches!(retried, Err(StoreError::Conflict("refund_exceeds_payment"))), "{retried:?}");

    let day = store.sandbox_day(NOW, NOW.plus_seconds(60)).await.unwrap();
    assert_eq!((day.payments.len(), day.refunds.len()), (1, 1));
    store.close().await;
}

/// Paying is refused once the payment is closed or past its time, unless late (the `late_pay` switch).
async fn the_sandbox_refuses_closed_payments_unless_late(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    for (out, expires) in [("closed-1", NOW.plus_seconds(300)), ("expired-1", NOW)] {
        let new = NewSandboxPayment {
            out_trade_no: out.into(),
            amount: fen(100),
            description: "d".into(),
            return_url: None,
            expires_at: expires,
        };
        store.sandbox_create_payment(&new, NOW).await.unwrap();
    }
    let change = |out: &str, late: bool| SandboxChange { out_trade_no: out.into(), now: NOW, late, notification: None };
    let (closed, changed) = store.sandbox_close(&change("closed-1", false)).await.unwrap();
    assert!(changed && closed.status == "closed");
    for out in ["closed-1", "expired-1"] {
        assert!(matches!(store.sandbox_pay(&change(out, false)).await, Err(StoreError::Conflict("payment_closed"))));
        let (paid, changed) = store.sandbox_pay(&change(out, true)).await.unwrap();
        assert!(changed && paid.status == "paid", "late money for {out}");
    }
    assert!(matches!(store.sandbox_pay(&change("nobody", true)).await, Err(StoreError::NotFound)));
    store.close().await;
}

on_both_backends!(
    notifications_are_stored_once_and_applied_once,
    the_sandbox_keeps_its_books_across_a_restart,
    the_sandbox_refuses_closed_payments_unless_late
);
