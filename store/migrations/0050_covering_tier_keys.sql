-- The hour and day tiers' primary keys carry every column (INCLUDE), so a series query is an
-- index-only scan that reads its rows in (device, metric, bucket) order from a few index pages.
--
-- Why: refresh writes a tier in time order, all sensors interleaved, so the 720 hourly rows of
-- one sensor's month lie on ~720 different heap pages; ten sensors' month touched ~6,700 pages
-- (docs/storage.md, "What the benchmark says"). The Apache edition has no reorder_chunk, and
-- CLUSTER would lock the open chunk. The price: updates of these tiers are no longer HOT (an
-- included column changes), i.e. one extra index entry per refreshed row, and the index grows
-- to about the size of the heap. The minute tier keeps its narrow key: a covering key there would
-- add gigabytes per month of data for questions that span hours, not months.
ALTER TABLE rollup_1h DROP CONSTRAINT rollup_1h_pkey;
ALTER TABLE rollup_1h ADD CONSTRAINT rollup_1h_pkey PRIMARY KEY (device_id, metric, bucket)
    INCLUDE (count, sum, min, max, first, first_ts, last, last_ts, counter_inc);

ALTER TABLE rollup_1d DROP CONSTRAINT rollup_1d_pkey;
ALTER TABLE rollup_1d ADD CONSTRAINT rollup_1d_pkey PRIMARY KEY (device_id, metric, bucket)
    INCLUDE (count, sum, min, max, first, first_ts, last, last_ts, counter_inc);

ALTER TABLE rollup_1d_local DROP CONSTRAINT rollup_1d_local_pkey;
ALTER TABLE rollup_1d_local ADD CONSTRAINT rollup_1d_local_pkey
    PRIMARY KEY (device_id, metric, bucket)
    INCLUDE (count, sum, min, max, first, first_ts, last, last_ts, counter_inc);

-- Index-only scans skip the heap only on all-visible pages. Full pages (fillfactor 100: the
-- room left for HOT updates is of no use now) keep new row versions off the old, settled pages,
-- so those stay all-visible; and vacuum sees the tiers' inserts sooner than the default (20 % of
-- a chunk, hundreds of thousands of rows).
ALTER TABLE rollup_1h SET (fillfactor = 100, autovacuum_vacuum_insert_scale_factor = 0.01);
ALTER TABLE rollup_1d SET (fillfactor = 100, autovacuum_vacuum_insert_scale_factor = 0.01);
ALTER TABLE rollup_1d_local SET (fillfactor = 100, autovacuum_vacuum_insert_scale_factor = 0.01);
