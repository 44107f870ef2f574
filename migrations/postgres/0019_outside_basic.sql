-- How much basic information a health centre shows the outside bodies that phone its people
-- (contractors, lodging facilities), issue 13. 'narrow' (the default): who the person is and
-- how to reach them — name, kana, sex, date of birth, phone, e-mail, language — not the
-- address, workplace, occupation, nationality or the case's dates. 'full': all of basic
-- information, for a centre whose contractors visit people at home. Set by the centre's own
-- user-authentication officer.
ALTER TABLE health_centres ADD COLUMN outside_basic TEXT NOT NULL DEFAULT 'narrow'
    CHECK (outside_basic IN ('narrow', 'full'));
