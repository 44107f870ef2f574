-- The local government that runs a health centre [保健所設置自治体] (about 155 of them run
-- the ~470 centres): prefectures, designated cities, core cities, special wards.
ALTER TABLE health_centres ADD COLUMN municipality TEXT NOT NULL DEFAULT '';
