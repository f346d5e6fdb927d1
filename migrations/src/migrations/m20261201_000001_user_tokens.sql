-- Access tokens that stop working at once when their user is deleted or their version
-- moves on. A token carries its user's token_version; the API checks it against the row
-- (cached, and told of every change through NOTIFY on the amp_users channel).
ALTER TABLE users ADD COLUMN token_version integer NOT NULL DEFAULT 0;
CREATE FUNCTION amp_notify_user_change() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN PERFORM pg_notify('amp_users', OLD.id::text); RETURN NULL; END $$;
CREATE TRIGGER users_notify_change AFTER UPDATE OF token_version, role OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION amp_notify_user_change();
