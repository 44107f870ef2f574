-- Staff alerts leave as soon as they are queued: every statement that queues notifications
-- announces it at commit on the channel `mimamori_alerts` (nothing if it rolls back); the
-- alert worker listens and sends at once instead of at its next poll
-- (`workers.alert_interval_ms`, which stays as the fallback).
CREATE FUNCTION mimamori_alert_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mimamori_alerts', '');
    RETURN NULL;
END $$;
CREATE TRIGGER notifications_wake AFTER INSERT ON notifications
    FOR EACH STATEMENT EXECUTE FUNCTION mimamori_alert_wake();
