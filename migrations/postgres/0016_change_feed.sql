-- The change feed [変更通知]: every write that changes what a person's observation page or
-- a staff session shows is announced on the channel `mimamori_changes`, at commit, to every
-- process that listens (`mimamori_core::changes`). A process serves a person page or a
-- session from memory only while it listens; a lost connection empties its caches.
-- Payloads: 'p<person id>' (that person's page), 's' (every cached session), '*' (everything).
-- Triggers, not application code, announce the writes, so no write path can be forgotten.

CREATE FUNCTION mimamori_changed_person() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('mimamori_changes', 'p' || OLD.person_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('mimamori_changes', 'p' || NEW.person_id);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION mimamori_changed_person_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('mimamori_changes', 'p' || OLD.id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('mimamori_changes', 'p' || NEW.id);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION mimamori_changed_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mimamori_changes', 'p' || c.person_id)
    FROM checkins c WHERE c.id = NEW.checkin_id;
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

-- What the observation page reads, row by row.
CREATE TRIGGER changes_observations AFTER INSERT OR UPDATE OR DELETE ON observations
    FOR EACH ROW EXECUTE FUNCTION mimamori_changed_person();
CREATE TRIGGER changes_checkins AFTER UPDATE OR DELETE ON checkins
    FOR EACH ROW EXECUTE FUNCTION mimamori_changed_person();
-- New check-ins come from the planner by the million: one announcement per statement
-- (every page) instead of one per row.
CREATE TRIGGER changes_checkins_insert AFTER INSERT ON checkins
    FOR EACH STATEMENT EXECUTE FUNCTION mimamori_changed_all();
CREATE TRIGGER changes_attempts AFTER INSERT OR UPDATE ON contact_attempts
    FOR EACH ROW EXECUTE FUNCTION mimamori_changed_attempt();
CREATE TRIGGER changes_escalations AFTER INSERT OR UPDATE OR DELETE ON escalations
    FOR EACH ROW EXECUTE FUNCTION mimamori_changed_person();
CREATE TRIGGER changes_escalation_events AFTER INSERT OR UPDATE OR DELETE ON escalation_events
    FOR EACH ROW EXECUTE FUNCTION mimamori_changed_person();
CREATE TRIGGER changes_slots AFTER INSERT OR UPDATE OR DELETE ON person_slots
    FOR EACH ROW EXECUTE FUNCTION mimamori_changed_person();
CREATE TRIGGER changes_persons AFTER UPDATE OR DELETE ON persons
    FOR EACH ROW EXECUTE FUNCTION mimamori_changed_person_row();
-- Who may see the person (row scope).
CREATE TRIGGER changes_shares AFTER INSERT OR UPDATE OR DELETE ON person_shares
    FOR EACH ROW EXECUTE FUNCTION mimamori_changed_person();
CREATE TRIGGER changes_assignments AFTER INSERT OR UPDATE OR DELETE ON person_assignments
    FOR EACH ROW EXECUTE FUNCTION mimamori_changed_person();
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
