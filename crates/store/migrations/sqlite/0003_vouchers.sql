-- Vouchers, redemptions and every redemption attempt (S4). Same names and types as the PostgreSQL migration.

CREATE TABLE vouchers (
    id            TEXT PRIMARY KEY,
    code_hash     TEXT NOT NULL UNIQUE,            -- keyed hash of the code; the code itself is never stored
    kind          TEXT NOT NULL CHECK (kind IN ('purchase', 'coupon')),
    membership_id TEXT NOT NULL REFERENCES memberships (id),
    user_id       TEXT NOT NULL REFERENCES users (id),
    merchant_id   TEXT NOT NULL REFERENCES merchants (id),
    campaign_id   TEXT NOT NULL REFERENCES campaigns (id),
    amount        INTEGER NOT NULL,                -- purchase: the price paid; coupon: the amount off
    commission    INTEGER NOT NULL,                -- purchase: the platform's commission at redemption
    status        TEXT NOT NULL CHECK (status IN ('issued', 'redeemed', 'expired', 'refunded')),
    issued_at     INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    UNIQUE (membership_id, kind)
);
CREATE INDEX vouchers_by_user ON vouchers (user_id, issued_at);
CREATE INDEX vouchers_by_expiry ON vouchers (status, expires_at);

CREATE TABLE redemptions (
    id          TEXT PRIMARY KEY,
    voucher_id  TEXT NOT NULL REFERENCES vouchers (id),
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    staff_id    TEXT NOT NULL REFERENCES users (id),
    redeemed_at INTEGER NOT NULL,
    undone_at   INTEGER,
    undone_by   TEXT
);
CREATE INDEX redemptions_by_voucher ON redemptions (voucher_id);
CREATE INDEX redemptions_by_merchant ON redemptions (merchant_id, redeemed_at);

CREATE TABLE redemption_attempts (
    id             TEXT PRIMARY KEY,
    merchant_id    TEXT NOT NULL,
    staff_id       TEXT NOT NULL,
    voucher_id     TEXT,
    action         TEXT NOT NULL,                  -- preview, redeem, undo
    result         TEXT NOT NULL,                  -- ok, or the refusal's code
    client_address TEXT,
    at             INTEGER NOT NULL
);
CREATE INDEX redemption_attempts_by_staff ON redemption_attempts (staff_id, at);
CREATE INDEX redemption_attempts_by_merchant ON redemption_attempts (merchant_id, at);
