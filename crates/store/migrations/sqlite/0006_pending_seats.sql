-- Paying at the join, and refunds to where the money came from (PAYMENTS.md). Same names and types as the
-- PostgreSQL migration of the same name.
--
-- A seat may be held for a payment not made yet (`pending`) and released when its window ends (`unpaid`). A
-- released seat's seq goes to the next joiner, so the unique seat and member rules hold for seats that are held
-- only: they become partial indexes. SQLite cannot change a CHECK or drop a UNIQUE in place, so memberships is
-- rebuilt (the documented procedure: new table, copy, drop, rename; the migrator runs with foreign keys off).

CREATE TABLE memberships_rebuilt (
    id          TEXT PRIMARY KEY,
    group_id    TEXT NOT NULL REFERENCES groups (id),
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    seq         INTEGER NOT NULL,
    ticket      TEXT NOT NULL UNIQUE,              -- the public pseudonym
    client_seed TEXT NOT NULL,
    invited_by  TEXT,                              -- the inviter's ticket
    price       INTEGER NOT NULL,                  -- what was (or is to be) paid into the hold
    status      TEXT NOT NULL CHECK (status IN ('pending', 'waiting', 'won', 'lost', 'expired', 'unpaid')),
    created_at  INTEGER NOT NULL,
    paid_with   TEXT NOT NULL DEFAULT 'wallet',    -- wallet, or the provider that took the money
    pay_by      INTEGER                            -- a pending seat is held until then
);
INSERT INTO memberships_rebuilt (id, group_id, campaign_id, user_id, seq, ticket, client_seed, invited_by, price,
    status, created_at)
SELECT id, group_id, campaign_id, user_id, seq, ticket, client_seed, invited_by, price, status, created_at
FROM memberships;
DROP TABLE memberships;
ALTER TABLE memberships_rebuilt RENAME TO memberships;
CREATE INDEX memberships_by_user ON memberships (user_id, campaign_id);
CREATE UNIQUE INDEX memberships_seat ON memberships (group_id, seq) WHERE status <> 'unpaid';
CREATE UNIQUE INDEX memberships_member ON memberships (group_id, user_id) WHERE status <> 'unpaid';
CREATE INDEX memberships_pending ON memberships (pay_by) WHERE status = 'pending';

-- member_count counts held seats (paid and pending); a group fills on paid_count = group_size. released_seats is
-- how many seqs up to member_count + released_seats no held seat has (a released seat's seq, for the next joiner);
-- last_seq is the seq the last seat taken got.
ALTER TABLE groups ADD COLUMN paid_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN released_seats INTEGER NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
UPDATE groups SET paid_count = member_count, last_seq = member_count;

-- Every refund SPEC names, whichever way it goes: back to the wallet (done at once) or through the provider that
-- took the money (requested, then succeeded or failed). Its id is derived from its cause (`{cause}-{what}`), so it
-- can never be asked for twice; it is also the provider's out_refund_no.
CREATE TABLE refunds (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id),
    cause           TEXT NOT NULL CHECK (cause IN ('not_drawn', 'group_expired', 'voucher_returned',
                                                   'voucher_expired', 'late_payment')),
    membership_id   TEXT REFERENCES memberships (id),
    payment_id      TEXT REFERENCES payments (id),
    amount          INTEGER NOT NULL CHECK (amount > 0),
    destination     TEXT NOT NULL CHECK (destination IN ('wallet', 'provider')),
    provider        TEXT,
    status          TEXT NOT NULL CHECK (status IN ('requested', 'succeeded', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error      TEXT,
    requested_at    INTEGER NOT NULL,
    settled_at      INTEGER,
    CHECK ((destination = 'provider') = (provider IS NOT NULL AND payment_id IS NOT NULL))
);
CREATE INDEX refunds_by_user ON refunds (user_id, requested_at);
CREATE INDEX refunds_due ON refunds (status, next_attempt_at);
CREATE INDEX refunds_by_payment ON refunds (payment_id);
CREATE INDEX payments_by_membership ON payments (membership_id);

-- When a worker next asks the provider about a payment not paid yet (a lost notification, an ended window).
-- What the provider says it took (it may differ from the amount asked: such money pays for nothing, and is refunded).
ALTER TABLE payments ADD COLUMN paid_amount INTEGER;
ALTER TABLE payments ADD COLUMN next_check_at INTEGER;
CREATE INDEX payments_to_check ON payments (status, next_check_at);

-- How long a campaign's pending seat waits for its payment (1–15 minutes).
ALTER TABLE campaigns ADD COLUMN payment_window_minutes INTEGER NOT NULL DEFAULT 5
    CHECK (payment_window_minutes BETWEEN 1 AND 15);
