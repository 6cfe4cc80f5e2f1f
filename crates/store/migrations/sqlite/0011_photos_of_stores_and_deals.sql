-- Photos (issue 18, "looks like a product"): the file name of a store's and a deal's photo under the media
-- directory (`{sha256 prefix}.jpg`, content-hashed, so a name never changes meaning and can be cached for ever).
-- NULL until the owner uploads one. A campaign's photo is presentation, not one of its rules: it may change
-- after publishing. Same names and types on both backends.

ALTER TABLE merchants ADD COLUMN photo TEXT;
ALTER TABLE campaigns ADD COLUMN photo TEXT;
