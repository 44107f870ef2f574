-- The claim a contact attempt was made under (checkins.claim_token at the time): a failure
-- report moves its check-in only while no other batch has claimed it since (a late failure
-- of the first message must not replan a check-in a reminder batch is sending). NULL for
-- attempts made before this column: they move their check-in as before.
ALTER TABLE contact_attempts ADD COLUMN claim_token TEXT;
