"""The HTML report, rendered from a real SQLite history and read back with an HTML parser."""

from __future__ import annotations

import shutil
import struct
import subprocess
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from watchdog_oom.config import CommitConfig
from watchdog_oom.model import Alert, MemorySample, OomKill
from watchdog_oom.report import MAX_POINTS, render_report
from watchdog_oom.store import Store

HOSTILE = "<script>alert(1)</script>"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page(HTMLParser):
    """The parts of a rendered page the tests look at: elements with their attributes,
    the text of each <title> inside the SVG, and the whole text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.titles: list[str] = []
        self.text: list[str] = []
        self._stack: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag not in ("line", "path", "polyline", "polygon", "rect", "circle", "meta", "wbr"):
            self._stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self._stack:
            while self._stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._stack and self._stack[-1] == "title" and "svg" in self._stack:
            self.titles.append(data)

    def having(self, tag: str, css: str | None = None) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements if t == tag and (css is None or css in (a.get("class") or "").split())]

    def series(self, name: str) -> list[list[str]]:
        """The points of each polyline drawing `name`."""
        return [(a["points"] or "").split() for a in self.having("polyline") if a.get("data-series") == name]


def _sample(t, committed=12_000_000, available=6_000_000):
    return MemorySample(time=t, mem_total_kb=16_000_000, mem_available_kb=available, mem_free_kb=1,
                        swap_total_kb=4_000_000, swap_free_kb=4_000_000, committed_as_kb=committed,
                        commit_limit_kb=12_000_000, overcommit_memory=0, overcommit_ratio=50, overcommit_kbytes=0)


def _kill(t, pid, process, **kw):
    return OomKill(pid=pid, process=process, time=t, uid=1000, anon_rss_kb=3_400_000, constraint="CONSTRAINT_MEMCG",
                   task_memcg="/system.slice/app.service", cmdline=f"{process} --serve", source="kmsg", **kw)


def _fill(store: Store, start, count: int, step=timedelta(seconds=60), skip=()) -> None:
    """`count` minute samples from `start` (but those in `skip`), in one statement: each
    column of the samples table from the MemorySample field or property of its name, as
    Transaction.add_sample stores one (a thousand of its INSERTs took a second a test)."""
    from sqlalchemy import insert

    from watchdog_oom.store.tables import samples

    columns = [c.name for c in samples.columns if c.name not in ("id", "host", "resolution")]
    rows = [{"host": store.host, "resolution": 0, **{c: getattr(sample, c) for c in columns}}
            for sample in (_sample(start + i * step, committed=10_000_000 + i * 1000)
                           for i in range(count) if i not in skip)]
    with store.tx() as tx:
        tx.conn.execute(insert(samples), rows)


@pytest.fixture
def history(store, t0):
    """A day of minute samples, four kills (one with a hostile name), two alert episodes."""
    start = t0 - timedelta(days=1)
    _fill(store, start, 1440)
    with store.tx() as tx:
        tx.add_kill(_kill(start + timedelta(hours=3), 4242, "java"), t0)
        tx.add_kill(_kill(start + timedelta(hours=9), 666, HOSTILE, memcg=f"/evil/{HOSTILE}"), t0)
        tx.add_kill(_kill(start + timedelta(hours=20), 1001, "python3"), t0)
        tx.add_kill(_kill(start + timedelta(hours=20, seconds=5), 1002, "python3"), t0)
        tx.fire_alert(Alert(key="commit", kind="commit.warning", severity="warning",
                            summary=f"%commit 92% <b>{HOSTILE}</b>", time=start + timedelta(hours=8)))
        tx.resolve_alert(Alert(key="commit", kind="commit.resolved", severity="warning", summary="ok",
                               time=start + timedelta(hours=10), resolved=True))
        tx.fire_alert(Alert(key="memory.available", kind="memory.critical", severity="critical",
                            summary="MemAvailable 3% of MemTotal", time=start + timedelta(hours=21)))
    return start


def test_chart_draws_every_sample_of_each_series(store, history, t0):
    page = Page(render_report(store, history, t0))
    for name in ("commit", "limit", "available"):
        lines = page.series(name)
        assert len(lines) == 1
        # 1440 minute samples, the first at the very start of the period: one point each.
        assert len(lines[0]) == 1440


def test_pause_in_the_samples_breaks_the_line(store, t0):
    start = t0 - timedelta(hours=2)
    _fill(store, start, 120, skip=range(40, 70))
    page = Page(render_report(store, start, t0))
    assert [len(points) for points in page.series("commit")] == [40, 50]


def test_long_history_is_drawn_with_at_most_max_points(store, t0):
    start = t0 - timedelta(hours=7)
    _fill(store, start, 2500, step=timedelta(seconds=10))
    page = Page(render_report(store, start, t0))
    (points,) = page.series("commit")
    assert MAX_POINTS // 2 < len(points) <= MAX_POINTS


def _bulk_samples(store: Store, start, count: int, spike: int) -> None:
    """`count` 10-second samples of web-01 from `start`, written by the database itself
    (a recursive CTE, generate_series): flat, but for one spike at index `spike`."""
    from sqlalchemy import text

    values = ("'web-01', 0, 16000000, 8000000, 0, 0, 9000000, 12000000, "
              "CASE WHEN i = :spike THEN 170.0 ELSE 50.0 END, CASE WHEN i = :spike THEN 140.0 ELSE 40.0 END, "
              "CASE WHEN i = :spike THEN 1.5 ELSE 30.0 END, 0")
    columns = ("host, resolution, mem_total_kb, mem_available_kb, swap_total_kb, swap_free_kb, committed_as_kb, "
               "commit_limit_kb, commit_percent, commit_limit_percent, mem_available_percent, overcommit_memory, "
               "time")
    if store.engine.dialect.name == "sqlite":
        sql = (f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :count) "
               f"INSERT INTO samples ({columns}) SELECT {values}, "
               "strftime('%Y-%m-%d %H:%M:%S.000000', :start + i * 10, 'unixepoch') FROM n")
    else:
        sql = (f"INSERT INTO samples ({columns}) SELECT {values}, to_timestamp(:start + i * 10) "
               "FROM generate_series(0, :count - 1) AS i")
    with store.engine.begin() as conn:
        conn.execute(text(sql), {"count": count, "spike": spike, "start": int(start.timestamp())})


@pytest.mark.parametrize(("engine", "count"), [("sqlite", 100_000), ("postgresql", 100_000)])
def test_a_single_spike_among_many_samples_is_drawn(request, engine, count, t0):
    """The database reduces the samples to MAX_POINTS slices and keeps each slice's worst:
    one sample of 170% commit (and 1.5% available) among a hundred thousand (fifty a slice)
    still shows."""
    from watchdog_oom.report import AVAIL_HEIGHT, AVAIL_TOP, COMMIT_HEIGHT, COMMIT_TOP, Scale, _num, _percent_axis_top

    if engine == "sqlite":
        store = request.getfixturevalue("sqlite_store")
    else:
        store = Store(request.getfixturevalue("pg_url"), "web-01")
        request.addfinalizer(store.close)
        store.upgrade()
    start = t0 - timedelta(seconds=10 * count)
    _bulk_samples(store, start, count, spike=count * 2 // 3)
    page = Page(render_report(store, start, t0))
    text = "".join(page.text)
    assert f"{count:,}" in text and "170.0%" in text and "1.5%" in text  # the cards
    high = _percent_axis_top([170.0], CommitConfig().crit_percent * 1.1)
    top = Scale(0, 1, COMMIT_TOP, COMMIT_HEIGHT, high)
    low = Scale(0, 1, AVAIL_TOP, AVAIL_HEIGHT, 100.0)
    for name, scale, value in (("commit", top, 170.0), ("limit", top, 140.0), ("available", low, 1.5)):
        (points,) = page.series(name)
        assert MAX_POINTS // 2 < len(points) <= MAX_POINTS
        ys = [float(p.split(",")[1]) for p in points]
        assert ys.count(float(_num(scale.y(value)))) == 1, name  # the spike, once
        assert len(set(ys)) == 2, name  # and the flat line


def test_every_kill_is_marked_and_names_its_process_and_pid(store, history, t0):
    page = Page(render_report(store, history, t0))
    markers = page.having("g", "kill")
    # The two python3 kills five seconds apart share one marker that counts them.
    assert sorted(int(m["data-count"]) for m in markers) == [1, 1, 2]
    titles = "\n".join(page.titles)
    assert "java (pid 4242) killed by kernel" in titles
    assert f"{HOSTILE} (pid 666)" in titles
    assert "python3 (pid 1001)" in titles and "python3 (pid 1002)" in titles


def test_threshold_lines_follow_the_configuration(store, history, t0):
    page = Page(render_report(store, history, t0, commit=CommitConfig(warn_percent=80, crit_percent=95)))
    labels = [t for t in page.titles if t.startswith(("warn", "crit"))]
    assert labels == ["warn 80%", "crit 95%", "warn 10%", "crit 5%"]
    assert len(page.having("g", "threshold")) == 4


def test_tables_list_kills_and_alerts_with_their_fields(store, history, t0):
    page = Page(render_report(store, history, t0))
    text = "".join(page.text)
    assert len(page.having("table", "kills")) == 1 and len(page.having("table", "alerts")) == 1
    for field in ("2026-11-19 15:00:00", "4242", "java --serve", "CONSTRAINT_MEMCG", "/system.slice/app.service",
                  "3.2 GiB", "kernel", "memory.critical", "MemAvailable 3% of MemTotal", "firing"):
        assert field in text


def test_hostile_text_is_escaped_everywhere(store, history, t0):
    html = render_report(store, history, t0)
    page = Page(html)
    assert "<script" not in html and "<b>" not in html
    assert not page.having("script") and not page.having("b")
    text = "".join(page.text)
    # Shown as text in the kill table, the command line, the cgroup and the alert summary.
    assert text.count(HOSTILE) >= 4


def test_page_loads_nothing_from_the_network(store, history, t0):
    html = render_report(store, history, t0)
    page = Page(html)
    for tag, attrs in page.elements:
        for name, value in attrs.items():
            assert name not in ("src", "href", "srcset", "action"), (tag, name, value)
            assert "//" not in (value or ""), (tag, name, value)
    assert "url(" not in html and "@import" not in html
    (csp,) = [a for a in page.having("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in csp["content"]


def test_empty_history_says_so(store, t0):
    page = Page(render_report(store, t0 - timedelta(days=7), t0))
    text = "".join(page.text)
    assert "no samples in this period" in text
    assert "No kills in this period." in text and "No alerts in this period." in text
    assert page.series("commit") == [] and page.having("g", "kill") == []


def test_alert_that_began_before_the_period_is_shown(store, history, t0):
    page = Page(render_report(store, t0 - timedelta(hours=1), t0))
    text = "".join(page.text)
    assert "memory.critical" in text and "commit.warning" not in text
    assert len(page.having("rect", "episode")) == 1


def test_other_hosts_of_the_fleet_are_left_out(store, history, t0):
    other = Store(store.url, "db-07")
    with other.tx() as tx:
        tx.add_kill(_kill(t0 - timedelta(hours=1), 77, "mysqld"), t0)
        tx.add_sample(_sample(t0 - timedelta(minutes=1)))
    assert "mysqld" not in render_report(store, history, t0)
    page = Page(render_report(store, history, t0, host="db-07"))
    assert "mysqld" in "".join(page.text) and [len(p) for p in page.series("commit")] == [1]
    other.close()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here to render the page in (apt-get install chromium)")
def test_page_renders_in_a_real_browser(store, history, t0, tmp_path: Path):
    page = tmp_path / "report.html"
    page.write_text(render_report(store, history, t0), encoding="utf-8")
    shot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1400,1000",
         page.as_uri()],
        check=True, capture_output=True, timeout=60)
    data = shot.read_bytes()
    width, height = _png_size(data)
    assert (width, height) == (1400, 1000)
    # A blank or error page at this size compresses to under 10 kB; the chart's lines, fills
    # and text make it many times that.
    assert len(data) > 50_000
