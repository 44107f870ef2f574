-- Nothing to store on SQLite: the embedded server runs its alert worker in the same process,
-- and the answer writer wakes it after a commit that raised an urgent escalation
-- (`store::escalations::wake_alerts`). The PostgreSQL migration of the same number announces
-- queued staff alerts to other processes.
SELECT 1;
