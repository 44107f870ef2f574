-- A follow-up phone call made by a contractor or health-centre staff (issue 14): who called,
-- when, and what came of it (reached, no answer, busy, wrong number). A reached call's
-- answers are entered as an observation; an unreached one is kept so the centre can see who
-- tried and when. Part of the health-observation group of the access matrix.
CREATE TABLE phone_followups (
    id          INTEGER PRIMARY KEY,
    person_id   INTEGER NOT NULL REFERENCES persons(id),
    staff_id    INTEGER NOT NULL REFERENCES staff(id),
    outcome     TEXT NOT NULL CHECK (outcome IN ('reached', 'no_answer', 'busy', 'wrong_number')),
    note        TEXT,
    at          TEXT NOT NULL
);
CREATE INDEX phone_followups_person ON phone_followups(person_id, at);
