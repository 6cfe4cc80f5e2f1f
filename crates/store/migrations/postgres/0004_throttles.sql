-- Throttles: one counter row ("bucket") per throttled thing: a staff member at a merchant, a merchant, a client
-- address, a phone at an address. A claim is one conditional upsert that takes a slot only while the bucket's window
-- has room, so requests in flight together cannot all pass, on one instance or many. Rows whose window has closed
-- hold nothing and are pruned. Same names and types as the SQLite migration.

CREATE TABLE throttle_buckets (
    key       TEXT PRIMARY KEY,      -- what is counted, e.g. voucher-staff:{merchant}:{user} (phones and addresses
                                     -- only as keyed pseudonyms)
    closes_at BIGINT  NOT NULL,      -- when the open window closes (ms); a window opens at its first claim
    used      BIGINT  NOT NULL       -- slots claimed in the open window
);
CREATE INDEX throttle_buckets_by_closing ON throttle_buckets (closes_at);
