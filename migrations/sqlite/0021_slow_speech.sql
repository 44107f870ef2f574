-- Calls that suit an elderly person (issue 12): prompts read slower with pauses between
-- sentences (SSML prosody and breaks) and more time to press keys. Per person, chosen at
-- registration or later with the schedule.
ALTER TABLE persons ADD COLUMN slow_speech INTEGER NOT NULL DEFAULT 0;
