-- The answer batch's two-statement path (`store::observations::answers`): the answers, their
-- audit rows and the people's new rule states are written by one autocommit statement from
-- what a read just before it found. Should anything have changed in between (a check-in
-- answered elsewhere, a rule state written by another batch), the statement calls this
-- with `false`: the error (SQLSTATE MM001) undoes the whole statement, and the batch is
-- recorded again in a transaction that reads and writes under its locks.
CREATE FUNCTION mimamori_expect(ok boolean) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'the batch''s read no longer holds' USING ERRCODE = 'MM001';
    END IF;
    RETURN 0;
END $$;
