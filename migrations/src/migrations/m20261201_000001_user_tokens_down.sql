-- Undoes m20261201_000001_user_tokens.sql.
DROP TRIGGER users_notify_change ON users;
DROP FUNCTION amp_notify_user_change();
ALTER TABLE users DROP COLUMN token_version;
