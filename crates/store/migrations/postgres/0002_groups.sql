-- Groups, memberships, the per-customer participation count and idempotency keys (S2, S3).
-- Same names and types as the SQLite migration of the same name.

CREATE TABLE groups (
    id                  TEXT PRIMARY KEY,
    campaign_id         TEXT NOT NULL REFERENCES campaigns (id),
    status              TEXT NOT NULL CHECK (status IN ('open', 'full', 'drawn', 'expired')),
    group_size          BIGINT NOT NULL,
    winners_per_group   BIGINT NOT NULL,
    member_count        BIGINT NOT NULL DEFAULT 0,
    server_seed         TEXT NOT NULL,              -- secret until the draw; shown only in the drawn record
    seed_commitment     TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    full_at             BIGINT,
    draw_due_at         BIGINT,                    -- when a full group must be drawn at the latest
    drawn_at            BIGINT,
    participants_digest TEXT,
    winners             TEXT,                       -- comma-separated seqs, ascending
    expired_at          BIGINT,
    CHECK (member_count >= 0 AND member_count <= group_size)
);
CREATE INDEX groups_by_campaign ON groups (campaign_id, status);
CREATE INDEX groups_by_deadline ON groups (status, expires_at);
CREATE INDEX groups_by_draw_due ON groups (status, draw_due_at);

CREATE TABLE memberships (
    id          TEXT PRIMARY KEY,
    group_id    TEXT NOT NULL REFERENCES groups (id),
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    seq         BIGINT NOT NULL,
    ticket      TEXT NOT NULL UNIQUE,              -- the public pseudonym
    client_seed TEXT NOT NULL,
    invited_by  TEXT,                              -- the inviter's ticket
    price       BIGINT NOT NULL,                  -- what was paid into the hold
    status      TEXT NOT NULL CHECK (status IN ('waiting', 'won', 'lost', 'expired')),
    created_at  BIGINT NOT NULL,
    UNIQUE (group_id, seq),
    UNIQUE (group_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id, campaign_id);

-- How many memberships of a campaign a customer holds that did not expire: the per-customer limit is a
-- conditional update of this row, so concurrent joins by one customer cannot both pass it.
CREATE TABLE participations (
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    active      BIGINT NOT NULL CHECK (active >= 0),
    PRIMARY KEY (campaign_id, user_id)
);

-- Idempotency-Key: the first answer per caller, endpoint and key.
CREATE TABLE idempotency_keys (
    caller       TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT,                          -- NULL while the first request is still answering
    body         TEXT,
    resource     TEXT,                             -- what the first request made (a membership id), to answer again
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (caller, endpoint, key)
);

-- An ended campaign is settled once nothing is open or full: then what is left of its reward reserve returns.
ALTER TABLE campaigns ADD COLUMN settled_at BIGINT;
