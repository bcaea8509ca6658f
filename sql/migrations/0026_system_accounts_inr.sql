-- depends: 0025_auth_sessions
--
-- The NSE market profile keeps money in INR: its system accounts, beside 0002's USD ones. A
-- posting finds its system legs by (kind, currency), so without these every INR deposit and fill
-- would name no account.

INSERT INTO ledger_accounts (kind, currency)
VALUES ('EXCHANGE_CLEARING', 'INR'), ('PAYMENT_GATEWAY_CLEARING', 'INR'), ('FEES', 'INR')
ON CONFLICT (kind, currency) WHERE user_id IS NULL DO NOTHING;
