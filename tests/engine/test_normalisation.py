"""Phone numbers become E.164; time zones are IANA names; local times survive DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dash.phones import BadPhoneNumber, from_provider, to_e164
from dash.timeutil import BadTimeZone, in_quiet_hours, local_to_utc, zone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(202) 555-0143", "US", "+12025550143"),
        ("+1 202-555-0143", "US", "+12025550143"),
        ("whatsapp:+14155238886", "US", "+14155238886"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("  +61 2 9876 5432 ", "US", "+61298765432"),
    ],
)
def test_phone_numbers_normalise_to_e164(raw: str, region: str, expected: str) -> None:
    assert to_e164(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "hello", "123", "+1 555", "7/9", "+999 1234567890", "x" * 100])
def test_bad_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(BadPhoneNumber):
        to_e164(raw)


def test_provider_addresses_are_kept_exactly() -> None:
    # WhatsApp reports Mexican mobiles with the retired '1'; we must answer that address.
    assert from_provider("whatsapp:+5215512345678") == "+5215512345678"
    assert from_provider("+15551230001") == "+15551230001"
    for bad in ("", "whatsapp:", "5551230001", "+12", "+1555abc0001"):
        with pytest.raises(BadPhoneNumber):
            from_provider(bad)


@given(st.text(max_size=60))
def test_phone_parser_never_crashes(text: str) -> None:
    try:
        result = to_e164(text)
    except BadPhoneNumber:
        return
    assert result.startswith("+") and result[1:].isdigit()


@pytest.mark.parametrize("name", ["EST", "Mars/Olympus", "", "america/new_york", "../etc/passwd"])
def test_unknown_time_zones_are_refused(name: str) -> None:
    with pytest.raises(BadTimeZone):
        zone(name)


def test_local_times_across_new_york_dst_end() -> None:
    # 2026-11-01: clocks go back from EDT (UTC-4) to EST (UTC-5).
    assert local_to_utc(date(2026, 10, 30), time(12, 30), "America/New_York") == datetime(
        2026, 10, 30, 16, 30, tzinfo=UTC
    )
    assert local_to_utc(date(2026, 11, 2), time(12, 30), "America/New_York") == datetime(
        2026, 11, 2, 17, 30, tzinfo=UTC
    )


def test_wall_time_in_spring_forward_gap_moves_forward() -> None:
    # 2027-03-14 02:30 does not exist in New York; 03:30 EDT is the first time after the gap.
    assert local_to_utc(date(2027, 3, 14), time(2, 30), "America/New_York") == datetime(
        2027, 3, 14, 7, 30, tzinfo=UTC
    )


def test_auckland_is_ahead_of_utc_by_a_day() -> None:
    # NZDT (UTC+13) in December: 08:00 local on the 7th is 19:00 UTC on the 6th.
    assert local_to_utc(date(2026, 12, 7), time(8, 0), "Pacific/Auckland") == datetime(
        2026, 12, 6, 19, 0, tzinfo=UTC
    )


def test_quiet_hours_wrap_midnight() -> None:
    tz = "Europe/London"
    start, end = time(21, 0), time(7, 0)
    assert in_quiet_hours(datetime(2026, 12, 7, 22, 0, tzinfo=UTC), tz, start, end)
    assert in_quiet_hours(datetime(2026, 12, 8, 6, 59, tzinfo=UTC), tz, start, end)
    assert not in_quiet_hours(datetime(2026, 12, 8, 7, 0, tzinfo=UTC), tz, start, end)
