-- Staff alerts are claimed before they are sent (issue 12): with two worker processes both
-- used to read the same pending notification and text the nurse twice. A claim lasts until
-- claimed_until; a worker that dies holding one leaves it to be taken again after that.
ALTER TABLE notifications ADD COLUMN claimed_until TIMESTAMPTZ;
