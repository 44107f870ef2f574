-- The planned date to tell the person the result [連絡予定日] of a test record.
ALTER TABLE person_tests ADD COLUMN planned_contact_date TEXT;
