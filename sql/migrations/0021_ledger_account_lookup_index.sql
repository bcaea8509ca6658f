-- depends: 0020_ledger_statement_balance
--
-- One index to find any ledger account by (kind, currency, owner), the owner of a system account
-- being 0 (user ids are > 0). Posting code names an account by these three, for users and the
-- broker alike, in one join: settle_apply (0019) and core.ledger.post join on
-- coalesce(user_id, 0), which neither of the two partial keys of 0002 can serve. Without this
-- index that join read every ledger account per posting: ~110 ms at 400k users, measured, and
-- growing with every user.
CREATE UNIQUE INDEX IF NOT EXISTS ledger_accounts_kind_currency_owner_key
    ON ledger_accounts (kind, currency, coalesce(user_id, 0));
