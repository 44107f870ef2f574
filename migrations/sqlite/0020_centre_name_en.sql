-- The health centre's name as an English call reads it (issue 12): an English voice cannot
-- read 港区みなと保健所. Empty: English calls say "your health centre".
ALTER TABLE health_centres ADD COLUMN name_en TEXT NOT NULL DEFAULT '';
