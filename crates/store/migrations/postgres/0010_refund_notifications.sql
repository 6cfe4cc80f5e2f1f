-- Refund notifications (WeChat Pay's REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED): verified, checked against
-- our refund (same provider, same payment, same amount) and stored once by the provider's event id as 'received';
-- the worker applies each exactly once through the refunds' settle path and marks it 'applied'. A table of its
-- own rather than more kinds in payment_events (whose CHECK SQLite could only change by rebuilding the table).
-- Same names and types as the SQLite migration.
CREATE TABLE refund_events (
    id          TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    event_id    TEXT NOT NULL,                         -- the provider's id for the notification
    refund_id   TEXT NOT NULL REFERENCES refunds (id),
    outcome     TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
    settled_at  BIGINT,                                -- the provider's success time ('succeeded')
    raw         TEXT NOT NULL,                         -- the body exactly as received and verified
    status      TEXT NOT NULL CHECK (status IN ('received', 'applied')),
    received_at BIGINT NOT NULL,
    applied_at  BIGINT,
    UNIQUE (provider, event_id)
);
CREATE INDEX refund_events_to_apply ON refund_events (status, received_at);
CREATE INDEX refund_events_by_refund ON refund_events (refund_id);
