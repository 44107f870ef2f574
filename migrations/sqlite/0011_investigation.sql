-- Active epidemiological investigation [積極的疫学調査]: where a case went and whom they met
-- (dated), and the infection link and route. Contacts named here can be registered as
-- close contacts in one step (persons.source_person_id, last exposure = the entry's date).
CREATE TABLE person_behaviours (
    id          INTEGER PRIMARY KEY,
    person_id   INTEGER NOT NULL REFERENCES persons(id),
    on_date     TEXT NOT NULL,
    time_text   TEXT,
    place       TEXT NOT NULL,
    place_phone TEXT,
    setting     TEXT NOT NULL CHECK (setting IN ('home', 'work', 'school', 'restaurant', 'medical', 'welfare', 'transport', 'event', 'other')),
    people_met  TEXT,
    entered_by  INTEGER REFERENCES staff(id),
    created_at  TEXT NOT NULL
);
CREATE INDEX person_behaviours_person ON person_behaviours(person_id, on_date);

-- Infection link ◎: confirmed / presumed / unknown; route: area, setting type, place.
ALTER TABLE persons ADD COLUMN infection_link TEXT CHECK (infection_link IN ('confirmed', 'presumed', 'unknown'));
ALTER TABLE persons ADD COLUMN infection_area TEXT;
ALTER TABLE persons ADD COLUMN infection_setting TEXT;
ALTER TABLE persons ADD COLUMN infection_place TEXT;
