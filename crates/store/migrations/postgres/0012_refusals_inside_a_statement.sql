-- A statement that runs as its own transaction (no BEGIN/COMMIT around it: one round trip) cannot be rolled back
-- by its caller after it ran; when it must refuse, it refuses itself: `refuse(code)` fails the statement with
-- SQLSTATE TG001 and the refusal's code as its message, so nothing it wrote stays. It holds no rule: the
-- statement decides when to call it (see `db::refuse_when` in crates/store). PostgreSQL only; SQLite's units run
-- inside a savepoint their caller rolls back.

CREATE FUNCTION refuse(code TEXT) RETURNS BIGINT
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'TG001', MESSAGE = code;
END
$$;
