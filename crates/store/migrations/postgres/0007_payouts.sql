-- Payouts and withdrawals, and partner-mode profit sharing at redemption (PAYMENTS.md "Payouts"). Same names and
-- types as the SQLite migration of the same name.
--
-- A payout moves someone's available balance out through a provider: a merchant's (requested by its owner) or a
-- customer's (a withdrawal). Its id is our out_payout_no. `requested` until the provider says it succeeded or
-- failed; the worker tries it again at next_attempt_at (with backoff) while the provider is processing or does
-- not answer. A merchant has at most one payout `requested` at a time: a partial unique index, so concurrent
-- requests cannot both pass.
CREATE TABLE payouts (
    id                 TEXT PRIMARY KEY,                -- our out_payout_no
    kind               TEXT NOT NULL CHECK (kind IN ('merchant', 'customer')),
    merchant_id        TEXT REFERENCES merchants (id),  -- a merchant payout's merchant
    user_id            TEXT NOT NULL REFERENCES users (id), -- who asked: the owner, or the withdrawing customer
    provider           TEXT NOT NULL,
    payee              TEXT NOT NULL,                   -- the receiving account at the provider
    amount             BIGINT NOT NULL CHECK (amount > 0),
    status             TEXT NOT NULL CHECK (status IN ('requested', 'succeeded', 'failed')),
    provider_payout_id TEXT,                            -- the provider's id, once it accepted the payout
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at    BIGINT,
    last_error         TEXT,
    created_at         BIGINT NOT NULL,
    settled_at         BIGINT,
    CHECK ((kind = 'merchant') = (merchant_id IS NOT NULL))
);
CREATE UNIQUE INDEX payouts_one_in_flight ON payouts (merchant_id) WHERE status = 'requested' AND kind = 'merchant';
CREATE INDEX payouts_by_merchant ON payouts (merchant_id, id);
CREATE INDEX payouts_by_user ON payouts (user_id, kind, id);
CREATE INDEX payouts_due ON payouts (status, next_attempt_at);

-- A profit share (partner mode) of a provider-paid purchase voucher, asked once its redemption can no longer be
-- undone: the commission to the platform's receiver, the rest released to the merchant. Its id is derived from
-- the redemption (`split-{redemption}`) and is our out_order_no, so it is asked once. `skipped` when the money
-- was no longer there to set aside (the merchant had it paid out already): nothing is asked of the provider.
CREATE TABLE splits (
    id                TEXT PRIMARY KEY,                 -- our out_order_no
    redemption_id     TEXT NOT NULL UNIQUE REFERENCES redemptions (id),
    payment_id        TEXT NOT NULL REFERENCES payments (id),
    merchant_id       TEXT NOT NULL REFERENCES merchants (id),
    provider          TEXT NOT NULL,
    amount            BIGINT NOT NULL CHECK (amount >= 0), -- net + commission: what leaves the provider's pool
    commission        BIGINT NOT NULL CHECK (commission >= 0),
    status            TEXT NOT NULL CHECK (status IN ('requested', 'succeeded', 'failed', 'skipped')),
    provider_split_id TEXT,
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT,
    last_error        TEXT,
    created_at        BIGINT NOT NULL,
    settled_at        BIGINT
);
CREATE INDEX splits_due ON splits (status, next_attempt_at);
CREATE INDEX splits_by_merchant ON splits (merchant_id, id);
