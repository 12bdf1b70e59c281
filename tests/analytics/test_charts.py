"""Tests for dash.charts: valid, sized, deterministic images and SVG that is safe to inline."""

from __future__ import annotations

import dataclasses
import struct
import threading
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from dash.analytics import runs_analysis
from dash.charts import (
    ChartAnnotation,
    ChartCache,
    RunChartData,
    _chart_key,
    chart_cache,
    empty_chart,
    highlight_from,
    run_chart,
)

SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
START = date(2026, 11, 2)  # a Monday
VALUES = [0.5, 0.55, None, 0.6, 0.5, 0.55, 0.7, 0.75, 0.8, 0.78, 0.85, 0.9, None, 0.92]


def _series(**overrides) -> RunChartData:
    """A two-week Dash series with a frozen baseline, a goal, a signal and two PDSA notes."""
    values = overrides.pop("values", VALUES)
    analysis = runs_analysis(values, freeze=5)
    fields = {
        "title": "POSS before opioid dose",
        "y_label": "% of doses",
        "dates": [START + timedelta(days=i) for i in range(len(values))],
        "values": values,
        "percent": True,
        "centre": analysis.centre,
        "freeze": 5,
        "goal": 0.9,
        "highlight": highlight_from(analysis),
        "runs_signal": analysis.runs_signal,
        "annotations": [
            ChartAnnotation(START + timedelta(days=5), "PDSA 1: bedside POSS card"),
            ChartAnnotation(START + timedelta(days=9), "<script>x</script>&"),
        ],
        "better": "higher",
        "centre_label": "Median",
        "goal_label": "Goal",
        "better_label": "better",
    }
    fields.update(overrides)
    return RunChartData(**fields)


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the PNG signature."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND"
    return struct.unpack(">II", data[16:24])


def _texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def _group(root: ET.Element, gid: str) -> ET.Element | None:
    return next((g for g in root.iter(f"{SVG}g") if g.get("id") == gid), None)


@pytest.mark.parametrize(("size", "expected"), [("phone", (1080, 900)), ("page", (1000, 460))])
def test_png_is_valid_and_sized(size: str, expected: tuple[int, int]) -> None:
    assert _png_size(run_chart(_series(), "png", size)) == expected


def test_output_is_deterministic() -> None:
    for fmt in ("png", "svg"):
        assert run_chart(_series(), fmt) == run_chart(_series(), fmt)  # type: ignore[arg-type]
    assert empty_chart("No data yet", "svg") == empty_chart("No data yet", "svg")


def test_svg_is_self_contained_and_safe_to_inline() -> None:
    svg = run_chart(_series(title='Doses <b>&</b> "POSS"'), "svg", "page")
    assert b"<!DOCTYPE" not in svg and b"<script" not in svg.lower()
    root = ET.fromstring(svg)
    for el in root.iter():
        assert not el.tag.lower().endswith("script")
        assert not el.tag.endswith(("foreignObject", "image"))
        for name, value in el.attrib.items():
            assert not name.lower().startswith("on"), name
            if name == XLINK_HREF or name == "href":
                assert value.startswith("#"), value  # only references inside the file
    assert b"url(http" not in svg and b"@import" not in svg and b"@font-face" not in svg
    texts = _texts(root)
    # Caller text is drawn as text, escaped in the file and intact once parsed.
    assert b"&lt;script&gt;x&lt;/script&gt;&amp;" in svg
    assert "<script>x</script>&" in texts
    assert "PDSA 1: bedside POSS card" in texts
    assert 'Doses <b>&</b> "POSS"' in texts
    assert b"<b>" not in svg


def test_svg_marks_signal_points_centre_goal_and_notes() -> None:
    data = _series()
    root = ET.fromstring(run_chart(data, "svg", "page"))
    signal = _group(root, "signal-points")
    assert signal is not None
    plotted = [i for i in data.highlight if data.values[i] is not None]
    assert len(plotted) > 0
    assert len(list(signal.iter(f"{SVG}use"))) == len(plotted)
    for gid in ("data", "goal", "centre-baseline", "centre-extended", "annotation-0", "better"):
        assert _group(root, gid) is not None, gid
    assert _group(root, "centre") is None  # a frozen baseline is drawn as two segments
    texts = _texts(root)
    assert "Median\n52%" in texts or any(t.startswith("Median") for t in texts)
    assert any("90%" in t for t in texts)


def test_no_signal_no_highlight() -> None:
    root = ET.fromstring(
        run_chart(_series(highlight=(), freeze=None, goal=None, better=None), "svg")
    )
    assert _group(root, "signal-points") is None
    assert _group(root, "centre") is not None and _group(root, "goal") is None
    assert _group(root, "better") is None


def test_date_labels_are_short_and_localisable() -> None:
    texts = _texts(ET.fromstring(run_chart(_series(), "svg", "phone")))
    ticks = [
        t for t in texts if t.split(" ")[0] in {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
    ]
    assert 2 <= len(ticks) <= 5 and "Sun 15" in ticks  # few ticks; the latest day labelled
    spanish = ("lun", "mar", "mié", "jue", "vie", "sáb", "dom")
    texts = _texts(ET.fromstring(run_chart(_series(weekday_names=spanish), "svg", "phone")))
    assert "dom 15" in texts


def test_counts_chart_and_edge_series() -> None:
    counts = RunChartData(
        title="Falls",
        y_label="falls",
        dates=[START + timedelta(days=i) for i in range(30)],
        values=[(i * 7) % 5 for i in range(30)],
        centre=2,
        better="lower",
    )
    assert _png_size(run_chart(counts)) == (1080, 900)
    texts = _texts(ET.fromstring(run_chart(counts, "svg")))
    assert "2" in texts and not any(t.endswith("%") for t in texts)
    for values in ([], [None, None], [0.4]):
        data = _series(values=values, annotations=(), centre=None, freeze=None)
        assert _png_size(run_chart(data, "png", "page")) == (1000, 460)
        ET.fromstring(run_chart(data, "svg"))


def test_empty_chart() -> None:
    assert _png_size(empty_chart("Sin datos todavía", "png")) == (1080, 900)
    svg = empty_chart("No data yet <for> you & me", "svg", "page")
    root = ET.fromstring(svg)
    assert "No data yet <for> you & me" in _texts(root)
    assert b"&lt;for&gt;" in svg


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        run_chart(_series(), "jpg")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        run_chart(_series(), "png", "tablet")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        _series(dates=[START])
    with pytest.raises(ValueError):
        _series(weekday_names=("Mo",))
    with pytest.raises(ValueError):
        empty_chart("x", "gif")  # type: ignore[arg-type]


def test_threads_render_the_same_bytes() -> None:
    # Each call owns its Figure; concurrent renders must not bleed into each other.
    inputs = [
        _series(
            title=f"Team {n}", values=[v if v is None else min(1.0, v + n / 50) for v in VALUES]
        )
        for n in range(4)
    ]
    expected = [run_chart(d, "svg") for d in inputs]
    chart_cache.clear()  # draw again, concurrently, instead of reading the cache
    results: list[bytes | None] = [None] * len(inputs)

    def work(k: int) -> None:
        results[k] = run_chart(inputs[k], "svg")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected


def test_an_equal_chart_comes_from_the_cache_and_any_change_draws_anew() -> None:
    chart_cache.clear()
    first = run_chart(_series(), "svg", "page")
    assert run_chart(_series(), "svg", "page") == first
    assert (chart_cache.hits, chart_cache.misses) == (1, 1)
    # A corrected value, a new PDSA note, another team's title: each is a different picture.
    corrected = run_chart(_series(values=[*VALUES[:-1], 0.5]), "svg", "page")
    noted = run_chart(
        _series(annotations=[ChartAnnotation(START + timedelta(days=2), "PDSA 2: huddle")]),
        "svg",
        "page",
    )
    other = run_chart(_series(title="Another team"), "svg", "page")
    assert len({first, corrected, noted, other}) == 4
    assert chart_cache.misses == 4
    assert "Another team" in other.decode() and "Another team" not in first.decode()
    assert run_chart(_series(), "png", "page") != first  # format and size are in the key
    assert empty_chart("No data yet", "svg") == empty_chart("No data yet", "svg")
    assert empty_chart("Sin datos todavía", "svg") != empty_chart("No data yet", "svg")


def test_the_cache_key_covers_every_field_of_the_chart() -> None:
    base = _series()
    changed = {
        "title": "x",
        "y_label": "x",
        "dates": [d + timedelta(days=1) for d in base.dates],
        "values": [0.1] * len(base.values),
        "percent": False,
        "centre": 0.123,
        "freeze": 3,
        "goal": 0.5,
        "highlight": (0,),
        "runs_signal": not base.runs_signal,
        "annotations": [],
        "better": "lower",
        "centre_label": "x",
        "goal_label": "x",
        "better_label": "x",
        "weekday_names": ["a", "b", "c", "d", "e", "f", "g"],
    }
    assert set(changed) == {f.name for f in dataclasses.fields(RunChartData)}
    for name, value in changed.items():
        assert _chart_key(dataclasses.replace(base, **{name: value})) != _chart_key(base), name


def test_the_cache_stays_within_its_byte_bound_dropping_the_least_recent() -> None:
    cache = ChartCache(max_bytes=100)
    cache.put(("a",), b"x" * 40)
    cache.put(("b",), b"x" * 40)
    assert cache.get(("a",)) is not None  # "a" is now the most recently used
    cache.put(("c",), b"x" * 40)
    assert cache.get(("b",)) is None and cache.get(("a",)) and cache.get(("c",))
    assert cache.size_bytes == 80
    cache.put(("huge",), b"x" * 101)  # larger than the whole cache: not kept
    assert cache.get(("huge",)) is None and cache.size_bytes == 80
