"""The rules file: the shipped defaults, errors with their line, reload without restart."""

from __future__ import annotations

import os
import textwrap
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from analytics.conditions import in_hours
from analytics.daylight import is_daylight, sun_times
from analytics.rulefile import (
    RuleFileError,
    RuleFileWatcher,
    load_rules,
    parse_duration,
    parse_rules,
)
from analytics.rules import KINDS, ThresholdParams

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
version = 1

[[rule]]
id = "pm25-high"
kind = "threshold"
scope = { kind = "air_quality" }
metric = "pm25"
op = ">"
value = 50
for = "10m"
"""


def test_shipped_rules_cover_every_kind_of_the_brief() -> None:
    rs = load_rules(ROOT / "deploy" / "rules.toml")
    kinds = {r.kind for r in rs.rules}
    assert kinds == set(KINDS)
    ids = [r.id for r in rs.rules]
    assert len(ids) == len(set(ids))
    pm = next(r for r in rs.rules if r.id == "pm25-high")
    assert isinstance(pm.params, ThresholdParams)
    assert (pm.params.value, pm.params.critical, pm.hysteresis) == (50.0, 150.0, 5.0)
    assert pm.duration == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("edit", "line", "reason"),
    [
        (('op = ">"', 'op = ">>"'), 8, "op' must be one of >, <, outside"),
        (("value = 50", 'value = "fifty"'), 9, "'value' must be a number"),
        (('for = "10m"', 'for = "ten minutes"'), 10, "is not a duration"),
        (('metric = "pm25"', 'metric = "pm2.5"'), 7, "unknown metric 'pm2.5'"),
        (('kind = "threshold"', 'kind = "treshold"'), 5, "'kind' must be one of"),
        (('scope = { kind = "air_quality" }', 'scope = { kind = "tv" }'), 6, "kind 'tv'"),
        (("value = 50", "value = 50\nvalu = 3"), 10, "unknown key 'valu'"),
        (('op = ">"', 'op = ">"\nop = "<"'), 9, "not valid TOML"),
        (('id = "pm25-high"', 'id = "PM25 High"'), 4, "must be 1-64"),
    ],
)
def test_bad_rules_are_refused_with_line_and_reason(
    edit: tuple[str, str], line: int, reason: str
) -> None:
    text = GOOD.replace(*edit)
    with pytest.raises(RuleFileError) as exc:
        parse_rules(text, "deploy/rules.toml")
    assert exc.value.line == line, str(exc.value)
    assert reason in str(exc.value)
    assert str(exc.value).startswith(f"deploy/rules.toml, line {line}: ")


def test_duplicate_ids_and_missing_scope() -> None:
    twice = GOOD + "\n" + GOOD.replace("version = 1\n", "")
    with pytest.raises(RuleFileError, match=r"line 14: rule 'pm25-high': duplicate id \(first"):
        parse_rules(twice)
    with pytest.raises(RuleFileError, match="line 3: rule 'pm25-high': 'scope' is required"):
        parse_rules(GOOD.replace('scope = { kind = "air_quality" }\n', ""))
    with pytest.raises(RuleFileError, match="needs device, kind, area or all"):
        parse_rules(GOOD.replace('scope = { kind = "air_quality" }', "scope = {}"))


def test_kind_specific_checks() -> None:
    stale = textwrap.dedent(
        """
        [[rule]]
        id = "s"
        kind = "stale"
        scope = { all = true }
        metric = "pm25"
        """
    )
    with pytest.raises(RuleFileError, match=r"line 6: .*whole device"):
        parse_rules(stale)
    crit = GOOD.replace("value = 50", "value = 50\ncritical = 40")
    with pytest.raises(RuleFileError, match="'critical' must be beyond 'value'"):
        parse_rules(crit)
    rate = GOOD.replace('kind = "threshold"', 'kind = "rate"').replace('op = ">"\n', "")
    with pytest.raises(RuleFileError, match="'window' is required"):
        parse_rules(rate)
    river = textwrap.dedent(
        """
        [[rule]]
        id = "r"
        kind = "river_alarm"
        scope = { kind = "river_gauge" }
        gauge = "hanoi"
        """
    )
    with pytest.raises(RuleFileError, match="unknown gauge 'hanoi'"):
        parse_rules(river)


def test_watcher_reloads_changes_and_keeps_rules_on_a_bad_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(GOOD, encoding="utf-8")
    watcher = RuleFileWatcher(path)
    assert watcher.poll().rules[0].params == ThresholdParams(">", value=50.0)

    path.write_text(GOOD.replace("value = 50", "value = 35"), encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    assert watcher.poll().rules[0].params == ThresholdParams(">", value=35.0)

    path.write_text(GOOD.replace("value = 50", "value = [35"), encoding="utf-8")
    os.utime(path, ns=(2, 2))
    kept = watcher.poll()
    assert kept.rules[0].params == ThresholdParams(">", value=35.0)  # the old rules stay
    assert watcher.last_error is not None
    assert "line 10: not valid TOML: Unclosed array" in watcher.last_error
    assert "rules file refused, keeping the 1 current rules" in caplog.text

    # A forced reload (SIGHUP) re-reads even with the same mtime and size.
    path.write_text(GOOD.replace("value = 50", "value = 200"), encoding="utf-8")
    os.utime(path, ns=(2, 2))
    assert watcher.poll().rules[0].params == ThresholdParams(">", value=35.0)
    watcher.request_reload()
    assert watcher.poll().rules[0].params == ThresholdParams(">", value=200.0)
    assert watcher.last_error is None


def test_disabled_rules_are_known_but_not_run() -> None:
    rs = parse_rules(GOOD.replace('for = "10m"', 'for = "10m"\nenabled = false'))
    assert rs.rules == ()
    assert rs.ids() == frozenset({"pm25-high"})


def test_durations() -> None:
    assert parse_duration("10m") == timedelta(minutes=10)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("15 min") == timedelta(minutes=15)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration(90) == timedelta(seconds=90)
    for bad in ("10", "m", "10 minutes", "-5m", "1h x"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


def test_sun_times_follow_the_reference_table() -> None:
    assert sun_times(date(2026, 6, 15)) == (time(5, 14), time(18, 36))
    assert sun_times(date(2026, 1, 15)) == (time(6, 33), time(17, 34))
    # Halfway between 15 Dec (06:23, 17:17) and 15 Jan (06:33, 17:34).
    assert sun_times(date(2026, 12, 31)) == (time(6, 28), time(17, 26))
    noon = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    assert is_daylight(noon)
    assert not is_daylight(noon + timedelta(hours=7))  # 19:00 local
    assert not is_daylight(datetime(2026, 3, 1, 23, 20, tzinfo=UTC), timedelta(minutes=30))


def test_active_hours_wrap_midnight() -> None:
    rs = parse_rules(GOOD.replace('for = "10m"', 'for = "10m"\nhours = ["22:00", "05:00"]'))
    rule = rs.rules[0]
    assert in_hours(rule, datetime(2026, 3, 2, 16, 0, tzinfo=UTC))  # 23:00 local
    assert in_hours(rule, datetime(2026, 3, 2, 21, 0, tzinfo=UTC))  # 04:00 local
    assert not in_hours(rule, datetime(2026, 3, 2, 5, 0, tzinfo=UTC))  # 12:00 local
