-- Payments (PAYMENTS.md). Same names and types as the SQLite migration.
--
-- Ours: a payment we asked a provider for (its id is our out_trade_no), and every verified notification about it,
-- stored once by the provider's event id and applied by a worker (received -> applied).
-- The sandbox provider's own books: what "the provider" keeps on its side (payments, refunds, payouts and splits,
-- the notifications it owes us). They are not ours: only the sandbox adapter reads or writes them.

CREATE TABLE payments (
    id                TEXT PRIMARY KEY,                -- our out_trade_no
    provider          TEXT NOT NULL,                   -- sandbox, wechatpay, alipay
    user_id           TEXT NOT NULL REFERENCES users (id),
    membership_id     TEXT REFERENCES memberships (id),
    amount            BIGINT NOT NULL CHECK (amount > 0),
    description       TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('created', 'paid', 'closed', 'refunded')),
    client            TEXT,                            -- JSON for the client, once the provider answered
    provider_trade_id TEXT,                            -- the provider's id for it, once known
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    paid_at           BIGINT,
    closed_at         BIGINT
);
CREATE INDEX payments_by_user ON payments (user_id, created_at);
CREATE INDEX payments_by_status ON payments (status, expires_at);

CREATE TABLE payment_events (
    id          TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    event_id    TEXT NOT NULL,                         -- the provider's id for the notification
    payment_id  TEXT NOT NULL REFERENCES payments (id),
    kind        TEXT NOT NULL CHECK (kind IN ('paid', 'closed')),
    amount      BIGINT,                                  -- what the provider says was paid
    paid_at     BIGINT,
    raw         TEXT NOT NULL,                         -- the body exactly as received and verified
    status      TEXT NOT NULL CHECK (status IN ('received', 'applied')),
    received_at BIGINT NOT NULL,
    applied_at  BIGINT,
    UNIQUE (provider, event_id)
);
CREATE INDEX payment_events_to_apply ON payment_events (status, received_at);
CREATE INDEX payment_events_by_payment ON payment_events (payment_id);

CREATE TABLE sandbox_payments (
    id           TEXT PRIMARY KEY,                     -- the sandbox's own id
    out_trade_no TEXT NOT NULL UNIQUE,                 -- the merchant's (our payments.id)
    amount       BIGINT NOT NULL CHECK (amount > 0),
    description  TEXT NOT NULL,
    return_url   TEXT,
    status       TEXT NOT NULL CHECK (status IN ('created', 'paid', 'closed')),
    refunded     BIGINT NOT NULL DEFAULT 0,              -- refunds processing or succeeded
    split        BIGINT NOT NULL DEFAULT 0,              -- profit shares processing or succeeded
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    paid_at      BIGINT,
    closed_at    BIGINT,
    CHECK (refunded + split <= amount)
);
CREATE INDEX sandbox_payments_by_paid_at ON sandbox_payments (paid_at);

CREATE TABLE sandbox_refunds (
    id            TEXT PRIMARY KEY,                    -- the sandbox's own id
    out_refund_no TEXT NOT NULL UNIQUE,                -- ours
    payment_id    TEXT NOT NULL REFERENCES sandbox_payments (id),
    amount        BIGINT NOT NULL CHECK (amount > 0),
    reason        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
    requested_at  BIGINT NOT NULL,
    settled_at    BIGINT
);
CREATE INDEX sandbox_refunds_by_status ON sandbox_refunds (status, settled_at);

CREATE TABLE sandbox_transfers (
    id           TEXT PRIMARY KEY,                     -- the sandbox's own id
    kind         TEXT NOT NULL CHECK (kind IN ('payout', 'split')),
    out_no       TEXT NOT NULL,                        -- ours: the payout's or the split's id
    payment_id   TEXT REFERENCES sandbox_payments (id), -- a split's payment
    payee        TEXT NOT NULL,                        -- a payout's account; a split's receivers as JSON
    amount       BIGINT NOT NULL CHECK (amount > 0),
    status       TEXT NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
    requested_at BIGINT NOT NULL,
    settled_at   BIGINT,
    UNIQUE (kind, out_no)
);
CREATE INDEX sandbox_transfers_by_status ON sandbox_transfers (status);

CREATE TABLE sandbox_notifications (
    id           TEXT PRIMARY KEY,                     -- the event id the body carries
    payment_id   TEXT NOT NULL REFERENCES sandbox_payments (id),
    body         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dropped', 'gave_up')),
    created_at   BIGINT NOT NULL,
    due_at       BIGINT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,              -- deliveries tried
    sends        BIGINT NOT NULL DEFAULT 0,              -- requests sent (a duplicated delivery sends two)
    delivered_at BIGINT,
    last_error   TEXT
);
CREATE INDEX sandbox_notifications_due ON sandbox_notifications (status, due_at);
