-- The change feed [変更通知]: every write that changes what a person's observation page or
-- a staff session shows is announced on the channel `mimamori_changes`, at commit, to every
-- process that listens (`mimamori_core::changes`). A process serves a person page or a
-- session from memory only while it listens; a lost connection empties its caches.
-- Payloads: 'p<person id>' (that person's page), 's' (every cached session), '*' (everything).
-- Triggers, not application code, announce the writes, so no write path can be forgotten.

-- Statement-level with transition tables: one call per statement, one announcement per
-- person, however many rows (an answer batch, a dispatch batch, a sweep).
CREATE FUNCTION mimamori_changed_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mimamori_changes', 'p' || d.person_id)
    FROM (SELECT DISTINCT person_id FROM new_rows) d;
    RETURN NULL;
END $$;

CREATE FUNCTION mimamori_changed_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mimamori_changes', 'p' || d.person_id)
    FROM (SELECT DISTINCT person_id FROM old_rows) d;
    RETURN NULL;
END $$;

CREATE FUNCTION mimamori_changed_both() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mimamori_changes', 'p' || d.person_id)
    FROM (SELECT person_id FROM old_rows UNION SELECT person_id FROM new_rows) d;
    RETURN NULL;
END $$;

CREATE FUNCTION mimamori_changed_persons() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mimamori_changes', 'p' || d.id)
    FROM (SELECT id FROM old_rows UNION SELECT id FROM new_rows) d;
    RETURN NULL;
END $$;

CREATE FUNCTION mimamori_changed_persons_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mimamori_changes', 'p' || d.id) FROM (SELECT DISTINCT id FROM old_rows) d;
    RETURN NULL;
END $$;

CREATE FUNCTION mimamori_changed_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mimamori_changes', 'p' || d.person_id)
    FROM (SELECT DISTINCT c.person_id FROM new_rows a JOIN checkins c ON c.id = a.checkin_id) d;
    RETURN NULL;
END $$;

CREATE FUNCTION mimamori_changed_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mimamori_changes', '*');
    RETURN NULL;
END $$;

CREATE FUNCTION mimamori_changed_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mimamori_changes', 's');
    RETURN NULL;
END $$;

-- What the observation page reads (rows with a person_id). PostgreSQL allows one event per
-- trigger with transition tables, hence three triggers a table.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['observations', 'escalations', 'escalation_events', 'person_slots',
                             'person_shares', 'person_assignments'] LOOP
        EXECUTE format('CREATE TRIGGER changes_%1$s_insert AFTER INSERT ON %1$I REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION mimamori_changed_new()', t);
        EXECUTE format('CREATE TRIGGER changes_%1$s_update AFTER UPDATE ON %1$I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION mimamori_changed_both()', t);
        EXECUTE format('CREATE TRIGGER changes_%1$s_delete AFTER DELETE ON %1$I REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION mimamori_changed_old()', t);
    END LOOP;
END $$;
CREATE TRIGGER changes_checkins_update AFTER UPDATE ON checkins
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mimamori_changed_both();
CREATE TRIGGER changes_checkins_delete AFTER DELETE ON checkins REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mimamori_changed_old();
-- New check-ins come from the planner by the million: one announcement per statement
-- (every page) instead of a transition table of a million rows.
CREATE TRIGGER changes_checkins_insert AFTER INSERT ON checkins
    FOR EACH STATEMENT EXECUTE FUNCTION mimamori_changed_all();
CREATE TRIGGER changes_attempts_insert AFTER INSERT ON contact_attempts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mimamori_changed_attempts();
CREATE TRIGGER changes_attempts_update AFTER UPDATE ON contact_attempts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mimamori_changed_attempts();
CREATE TRIGGER changes_persons_update AFTER UPDATE ON persons
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mimamori_changed_persons();
CREATE TRIGGER changes_persons_delete AFTER DELETE ON persons REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mimamori_changed_persons_deleted();
-- Time zone, prefecture, "government staff only": every page.
CREATE TRIGGER changes_health_centres AFTER UPDATE OR DELETE ON health_centres
    FOR EACH STATEMENT EXECUTE FUNCTION mimamori_changed_all();
-- Sessions end (logout, logout everywhere, suspension, expiry); an account's role, office,
-- organisation, name or suspension changes (names also appear on review timelines).
CREATE TRIGGER changes_sessions AFTER DELETE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION mimamori_changed_sessions();
CREATE TRIGGER changes_staff AFTER UPDATE ON staff
    FOR EACH ROW WHEN ((OLD.role, OLD.health_centre_id, OLD.organisation_id, OLD.display_name, OLD.suspended)
                       IS DISTINCT FROM (NEW.role, NEW.health_centre_id, NEW.organisation_id, NEW.display_name, NEW.suspended))
    EXECUTE FUNCTION mimamori_changed_all();
CREATE TRIGGER changes_staff_delete AFTER DELETE ON staff
    FOR EACH STATEMENT EXECUTE FUNCTION mimamori_changed_all();
