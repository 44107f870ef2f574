-- The dev outbox is read by health-centre staff (issue 13): each message records whose it
-- is, so a centre sees only its own people's messages and a staff member only their own
-- login codes and alerts.
ALTER TABLE outbox_messages ADD COLUMN person_id BIGINT;
ALTER TABLE outbox_messages ADD COLUMN staff_id BIGINT;
CREATE INDEX outbox_messages_person ON outbox_messages(person_id);
CREATE INDEX outbox_messages_staff ON outbox_messages(staff_id);
