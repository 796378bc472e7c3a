-- A mail's raw source is kept in its row when small (`content`), in the blob store when large (`storage_key`):
-- exactly one of the two. Most mail is a few KiB, and a file per mail cost more than the rest of its import.
ALTER TABLE mail_sources ALTER COLUMN storage_key DROP NOT NULL;
ALTER TABLE mail_sources ADD COLUMN content BYTEA;
ALTER TABLE mail_sources ADD CONSTRAINT mail_sources_one_place CHECK ((storage_key IS NULL) <> (content IS NULL));
ALTER TABLE mail_log ALTER COLUMN storage_key DROP NOT NULL;
ALTER TABLE mail_log ADD COLUMN content BYTEA;
ALTER TABLE mail_log ADD CONSTRAINT mail_log_one_place CHECK ((storage_key IS NULL) <> (content IS NULL));
