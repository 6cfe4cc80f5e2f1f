-- Foundation: accounts, sessions, merchants, campaigns and the ledger.
-- Ids are TEXT (UUIDv7), money BIGINT fen, times INTEGER milliseconds since the Unix epoch (UTC), flags INTEGER 0/1:
-- the same types as the PostgreSQL migration of the same name.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    phone         TEXT UNIQUE,                 -- NULL once the account is closed
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_operator   INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    closed_at     INTEGER
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,               -- SHA-256 of the bearer token; the token itself is never stored
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE merchants (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    category      TEXT NOT NULL,
    description   TEXT,
    address       TEXT NOT NULL,
    latitude      REAL NOT NULL,
    longitude     REAL NOT NULL,
    phone         TEXT NOT NULL,
    opening_hours TEXT,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'active', 'suspended')),
    created_at    INTEGER NOT NULL
);
CREATE INDEX merchants_by_position ON merchants (latitude, longitude);

CREATE TABLE merchant_roles (
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL CHECK (role IN ('owner', 'staff')),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, user_id)
);
CREATE INDEX merchant_roles_by_user ON merchant_roles (user_id);

CREATE TABLE campaigns (
    id                    TEXT PRIMARY KEY,
    merchant_id           TEXT NOT NULL REFERENCES merchants (id),
    status                TEXT NOT NULL CHECK (status IN ('draft', 'live', 'ended')),
    title                 TEXT NOT NULL,
    product_type          TEXT NOT NULL,
    description           TEXT,
    quantity              INTEGER NOT NULL,
    price                 INTEGER NOT NULL,
    original_price        INTEGER NOT NULL,
    group_size            INTEGER NOT NULL,
    winners_per_group     INTEGER NOT NULL,
    reward_kind           TEXT NOT NULL,
    reward_amount         INTEGER NOT NULL,
    reward_valid_days     INTEGER,
    referral_bonus_points INTEGER NOT NULL,
    commission_bps        INTEGER NOT NULL,
    group_ttl_seconds     INTEGER NOT NULL,
    draw_mode             TEXT NOT NULL,
    draw_at               INTEGER,
    draw_window_hours     INTEGER,
    voucher_valid_days    INTEGER NOT NULL,
    per_customer_limit    INTEGER NOT NULL,
    starts_at             INTEGER,
    ends_at               INTEGER,
    reserved_units        INTEGER NOT NULL DEFAULT 0,   -- K per open or full undrawn group
    won_units             INTEGER NOT NULL DEFAULT 0,   -- K per drawn group, for good
    created_at            INTEGER NOT NULL,
    published_at          INTEGER,
    ended_at              INTEGER,
    CHECK (reserved_units >= 0 AND won_units >= 0 AND reserved_units + won_units <= quantity)
);
CREATE INDEX campaigns_by_merchant ON campaigns (merchant_id);
CREATE INDEX campaigns_by_status ON campaigns (status);

CREATE TABLE ledger_entries (
    id         TEXT PRIMARY KEY,
    cause      TEXT NOT NULL,
    reference  TEXT UNIQUE,                    -- operator credits: the same reference credits once
    created_at INTEGER NOT NULL
);

CREATE TABLE ledger_postings (
    entry_id TEXT NOT NULL REFERENCES ledger_entries (id),
    account  TEXT NOT NULL,
    unit     TEXT NOT NULL CHECK (unit IN ('fen', 'points')),
    amount   INTEGER NOT NULL,
    PRIMARY KEY (entry_id, account, unit)
);
CREATE INDEX ledger_postings_by_account ON ledger_postings (account, unit);

-- The running sum of each account's postings, kept in the same transaction as the postings so that a debit can be
-- refused atomically (`… WHERE balance + amount >= 0`).
CREATE TABLE balances (
    account TEXT NOT NULL,
    unit    TEXT NOT NULL,
    balance INTEGER NOT NULL,
    PRIMARY KEY (account, unit)
);
