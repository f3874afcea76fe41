-- dothi energy analytics: daily consumption per meter split into time-of-use bands
-- (TT 16/2014/TT-BCT), from the cumulative energy counter with resets handled.
-- Written by analytics/energy_job.py.

CREATE TABLE energy_tou_daily (
    device_id   text             NOT NULL,
    day         date             NOT NULL,  -- local day, Asia/Ho_Chi_Minh
    peak_kwh    double precision NOT NULL,
    normal_kwh  double precision NOT NULL,
    offpeak_kwh double precision NOT NULL,
    total_kwh   double precision NOT NULL,
    resets      integer          NOT NULL,
    readings    integer          NOT NULL,
    computed_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, day)
);
