-- Partner mode's split worker looks, each tick, for standing redemptions redeemed before a cutoff, oldest first
-- (`Store::split_candidates`). This index holds just the standing ones in that order, so the step walks it from
-- the oldest and stops at its limit, instead of reading every paid payment and sorting what it found.
-- Same name and shape on both backends.

CREATE INDEX redemptions_standing ON redemptions (redeemed_at, id) WHERE undone_at IS NULL;
