-- Back to file-only sources: rows whose source is inline lose it.
DELETE FROM mail_sources WHERE storage_key IS NULL;
UPDATE mail_log SET storage_key = '' WHERE storage_key IS NULL;
ALTER TABLE mail_log DROP CONSTRAINT mail_log_one_place;
ALTER TABLE mail_log DROP COLUMN content;
ALTER TABLE mail_log ALTER COLUMN storage_key SET NOT NULL;
ALTER TABLE mail_sources DROP CONSTRAINT mail_sources_one_place;
ALTER TABLE mail_sources DROP COLUMN content;
ALTER TABLE mail_sources ALTER COLUMN storage_key SET NOT NULL;
