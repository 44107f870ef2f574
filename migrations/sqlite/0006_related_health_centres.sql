-- Related health centres [関係保健所]: a record shared with another health centre (the person
-- lives in one jurisdiction and was tested in another) is visible there at once.
CREATE TABLE person_shares (
    person_id        INTEGER NOT NULL REFERENCES persons(id),
    health_centre_id INTEGER NOT NULL REFERENCES health_centres(id),
    shared_by        INTEGER REFERENCES staff(id),
    created_at       TEXT NOT NULL,
    PRIMARY KEY (person_id, health_centre_id)
);
CREATE INDEX person_shares_centre ON person_shares(health_centre_id);
