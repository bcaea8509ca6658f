-- Users and their security material: TOTP secrets, API keys, KYC records.
--
-- Secrets and PII are encrypted in Python (AES-256-GCM) before they reach the database; here they
-- are opaque bytea ciphertext next to the 12-byte nonce used to encrypt them. key_id names the
-- data-encryption key so keys can be rotated without re-encrypting in one go.
-- Every statement is written to be re-runnable (IF NOT EXISTS / OR REPLACE).

CREATE TABLE IF NOT EXISTS users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           text        NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    password_hash   text        NOT NULL,
    is_active       boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Emails are unique regardless of case: Alice@x and alice@x are one person.
CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower_key ON users (lower(email));

CREATE TABLE IF NOT EXISTS user_totp (
    user_id             bigint      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_ciphertext   bytea       NOT NULL,
    secret_nonce        bytea       NOT NULL CHECK (octet_length(secret_nonce) = 12),
    key_id              text        NOT NULL,
    is_verified         boolean     NOT NULL DEFAULT false,
    verified_at         timestamptz,
    -- The last accepted TOTP time step: a code is accepted at most once (replay protection).
    last_used_step      bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_totp_verified_at_set CHECK (is_verified = (verified_at IS NOT NULL))
);

CREATE TABLE IF NOT EXISTS api_keys (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            text        NOT NULL DEFAULT '',
    -- The first characters of the key, shown to the user and used to find the row to verify.
    key_prefix      text        NOT NULL UNIQUE,
    -- A hash of the whole key; the key itself is shown once and never stored.
    key_hash        bytea       NOT NULL UNIQUE,
    scopes          text[]      NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz,
    revoked_at      timestamptz
);

CREATE INDEX IF NOT EXISTS api_keys_user_id_idx ON api_keys (user_id);

CREATE TABLE IF NOT EXISTS kyc_records (
    user_id                     bigint      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    status                      text        NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'VERIFIED', 'REJECTED')),
    rejection_reason            text,
    key_id                      text        NOT NULL,
    -- One ciphertext and one nonce per PII field: AES-GCM needs a fresh nonce per encryption.
    legal_name_ciphertext       bytea       NOT NULL,
    legal_name_nonce            bytea       NOT NULL CHECK (octet_length(legal_name_nonce) = 12),
    date_of_birth_ciphertext    bytea       NOT NULL,
    date_of_birth_nonce         bytea       NOT NULL
        CHECK (octet_length(date_of_birth_nonce) = 12),
    national_id_ciphertext      bytea       NOT NULL,
    national_id_nonce           bytea       NOT NULL CHECK (octet_length(national_id_nonce) = 12),
    address_ciphertext          bytea       NOT NULL,
    address_nonce               bytea       NOT NULL CHECK (octet_length(address_nonce) = 12),
    submitted_at                timestamptz NOT NULL DEFAULT now(),
    reviewed_at                 timestamptz,
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT kyc_records_rejection_has_reason
        CHECK (status <> 'REJECTED' OR rejection_reason IS NOT NULL),
    CONSTRAINT kyc_records_decision_reviewed
        CHECK (status = 'PENDING' OR reviewed_at IS NOT NULL)
);

CREATE INDEX IF NOT EXISTS kyc_records_pending_idx ON kyc_records (submitted_at)
    WHERE status = 'PENDING';
