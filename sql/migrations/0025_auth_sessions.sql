-- depends: 0024_sent_orders_resend
--
-- Sessions the way a broker app keeps them: a login opens a session; its short access tokens
-- name it (the "sid" claim) and a chain of one-time refresh tokens keeps it alive. Using a
-- refresh token rotates it (a new one replaces it); presenting a used one again means it was
-- stolen, and the whole session is revoked. Logging out revokes the session, "log out
-- everywhere" and a password change revoke all of a user's sessions.
--
-- Every API process must refuse a revoked session's access tokens at once: a revocation
-- notifies channel auth_session_revoked (trigger below), which each process LISTENs to.
CREATE TABLE IF NOT EXISTS auth_sessions (
    id              uuid        PRIMARY KEY,
    user_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    two_factor      boolean     NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- The session ends here whatever its refreshes (the refresh token's lifetime).
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text,
    CONSTRAINT auth_sessions_reason_with_revocation
        CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);

CREATE INDEX IF NOT EXISTS auth_sessions_user_live_idx ON auth_sessions (user_id)
    WHERE revoked_at IS NULL;
-- What a process that (re)connects loads: the sessions revoked within an access token's life.
CREATE INDEX IF NOT EXISTS auth_sessions_revoked_at_idx ON auth_sessions (revoked_at)
    WHERE revoked_at IS NOT NULL;

-- Refresh tokens are stored as SHA-256 digests (the token is 256 random bits, shown once).
CREATE TABLE IF NOT EXISTS auth_refresh_tokens (
    token_hash  bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    session_id  uuid        NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    used_at     timestamptz
);

CREATE INDEX IF NOT EXISTS auth_refresh_tokens_session_idx ON auth_refresh_tokens (session_id);

-- Two-factor recovery codes: shown once when 2FA is verified (or the set is renewed), stored as
-- SHA-256 digests (each code has 60 random bits), each usable once instead of a TOTP code.
CREATE TABLE IF NOT EXISTS user_recovery_codes (
    code_hash   bytea       PRIMARY KEY CHECK (octet_length(code_hash) = 32),
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    used_at     timestamptz
);

CREATE INDEX IF NOT EXISTS user_recovery_codes_user_idx ON user_recovery_codes (user_id);

CREATE OR REPLACE FUNCTION auth_session_revoked_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('auth_session_revoked', NEW.id::text);
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS auth_sessions_revoked_notify ON auth_sessions;
CREATE TRIGGER auth_sessions_revoked_notify
    AFTER UPDATE OF revoked_at ON auth_sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION auth_session_revoked_notify();
