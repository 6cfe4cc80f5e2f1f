-- Reconciliation (PAYMENTS.md): each provider's daily bill matched with our payments and refunds. Same names and
-- types as the PostgreSQL migration of the same name.
--
-- A result per run: re-running a day adds a newer result, and the latest one per provider and day is the day's
-- (older ones stay, so a mismatch that was later resolved is still on record). The mismatches themselves are JSON:
-- {"missing_ours": [...], "missing_theirs": [...], "amount_differs": [...]}, each item
-- {id, kind: payment|refund, ours?: {amount, at, status}, theirs?: {amount, at}} (amounts in fen, times in ms).
CREATE TABLE reconciliations (
    id             TEXT PRIMARY KEY,                  -- UUIDv7
    provider       TEXT NOT NULL,
    day            TEXT NOT NULL,                     -- the business day in China Standard Time, YYYY-MM-DD
    status         TEXT NOT NULL CHECK (status IN ('matched', 'mismatched')),
    bill_lines     INTEGER NOT NULL,                    -- lines on the provider's bill
    our_lines      INTEGER NOT NULL,                    -- our payments and refunds counted on that day
    matched        INTEGER NOT NULL,
    missing_ours   INTEGER NOT NULL,
    missing_theirs INTEGER NOT NULL,
    amount_differs INTEGER NOT NULL,
    mismatches     TEXT NOT NULL,                     -- JSON, as above
    checked_at     INTEGER NOT NULL,
    CHECK ((status = 'matched') = (missing_ours + missing_theirs + amount_differs = 0))
);
CREATE INDEX reconciliations_latest ON reconciliations (day, provider, checked_at);

-- The daily job's claim: one row per provider and day, so that one instance reconciles it, once. A claim not done
-- within its lease (the instance died) may be taken over.
CREATE TABLE reconciliation_claims (
    provider   TEXT NOT NULL,
    day        TEXT NOT NULL,
    claimed_at INTEGER NOT NULL,
    done_at    INTEGER,
    PRIMARY KEY (provider, day)
);
