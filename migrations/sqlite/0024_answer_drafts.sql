-- The link form's answers between its screens (issue 14): each screen is posted and then
-- redirected to (Post/Redirect/Get), so Back and reload behave; what was typed on earlier
-- screens waits here, tied to the check-in of the signed link, until the final submit
-- deletes it. Drafts of check-ins no longer open are purged by the dispatcher.
CREATE TABLE answer_drafts (
    checkin_id  INTEGER PRIMARY KEY REFERENCES checkins(id),
    answers     TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
