-- The commission_share loser reward (SPEC.md S4, claim 4): the share of the commission, in basis points, that a
-- group's losers split each time one of its winners' vouchers is redeemed. NULL for every other kind. A new
-- column, not a CHECK on reward_kind (SQLite would have to rebuild the table): CampaignRules::new is the check.
-- Such a campaign has no amount; reward_amount (NOT NULL since 0001) holds 0 for it and is read back as none.
-- Same names and types as the PostgreSQL migration.

ALTER TABLE campaigns ADD COLUMN reward_share_bps INTEGER;
