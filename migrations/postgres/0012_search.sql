-- Person search by name prefix. name_key (kana, else the name) and name_norm (the name as
-- typed) are folded by domain::kana_key and compare bytewise (COLLATE "C"), so a range
-- scan of their indexes finds every name starting with what was typed — kana or kanji — at
-- any table size.
ALTER TABLE persons ALTER COLUMN name_key TYPE TEXT COLLATE "C";
ALTER TABLE persons ADD COLUMN name_norm TEXT COLLATE "C";
CREATE INDEX persons_name_norm ON persons(name_norm);
-- People registered before: an approximation of the fold (spaces removed; width variants
-- are folded when the record is next saved).
UPDATE persons SET name_norm = REPLACE(REPLACE(name, ' ', ''), '　', '') WHERE name_norm IS NULL;
UPDATE persons SET name_key = name_norm WHERE name_key IS NULL;
