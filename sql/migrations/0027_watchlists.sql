-- depends: 0026_system_accounts_inr
--
-- Each user's watchlist: the symbols the web page's ticker follows, in the user's order.
-- watchlists has a row once a user saved a list (an empty one included); without a row the API
-- answers a default list. Symbols reference instruments, so a list never names an unknown one;
-- the size bound is a setting (BROKER_WATCHLIST_SYMBOLS_MAX), checked by the API.
CREATE TABLE IF NOT EXISTS watchlists (
    user_id     bigint      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS watchlist_symbols (
    user_id   bigint   NOT NULL REFERENCES watchlists (user_id) ON DELETE CASCADE,
    position  smallint NOT NULL CHECK (position >= 0),
    symbol    text     NOT NULL REFERENCES instruments (symbol),
    PRIMARY KEY (user_id, position),
    UNIQUE (user_id, symbol)
);
