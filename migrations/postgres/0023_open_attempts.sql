-- Reconciliation (issue 12): attempts still waiting for their provider's report are found by
-- age, so an outcome whose report never arrived (refused under load, lost on the way) is
-- asked of the provider instead of being lost.
CREATE INDEX contact_attempts_open ON contact_attempts(updated_at) WHERE status IN ('queued', 'sent');
