-- depends: 0035_ledger_check_probes
--
-- Time-ordered UUIDs (version 7, RFC 9562) for the rows every order writes, as core/ids.py does
-- in Python. A random UUID lands on a random page of each index it enters; once the indexes
-- outgrow the buffer cache (millions of orders) every order reads and dirties pages all over
-- them and, after each checkpoint, logs each such page whole. Milliseconds first keep new keys
-- together at the right edge. Built from gen_random_uuid(): its first 48 bits replaced by the
-- Unix time in milliseconds, the version nibble turned from 4 into 7 (bits 52 and 53).
CREATE OR REPLACE FUNCTION uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp())
                                                     * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

ALTER TABLE journal_txns ALTER COLUMN id SET DEFAULT uuid_v7();
ALTER TABLE orders ALTER COLUMN id SET DEFAULT uuid_v7();
ALTER TABLE payment_intents ALTER COLUMN id SET DEFAULT uuid_v7();
