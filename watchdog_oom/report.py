"""The HTML report: one self-contained page of a host's memory history and its OOM kills.

`render_report(store, since, now)` draws commit and available memory over the period as
inline SVG, marks every kill on the chart, shades the alert episodes, and lists the kills
and alerts below. The page needs no network and runs no script: its Content-Security-Policy
forbids both, so it can be mailed, attached to a ticket or opened offline.

Process names, command lines, cgroup paths and summaries are written by any local user;
every one of them is HTML-escaped here, where it is rendered.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from watchdog_oom import __version__
from watchdog_oom.config import CommitConfig, MemoryConfig
from watchdog_oom.store import Store
from watchdog_oom.stored import AlertEpisode, StoredKill
from watchdog_oom.textout import BIDI_AND_LINE_SEPARATORS
from watchdog_oom.valueclass import valueclass

# More samples than this are reduced, in the database, to the worst value per slice of time:
# a browser draws 2000 points per line at once, and a 1200-pixel chart cannot show more.
MAX_POINTS = 2000
# Points of each cgroup's sparkline (240 units wide): its highest working set per slice of time.
SPARK_POINTS = 240
# Rows per table; the rest are counted and left to `watchdog-oom history`.
TABLE_LIMIT = 1000
# Kills closer than this many chart units share one marker (its title lists them).
MARKER_SPACING = 6.0
# A pause in the samples longer than this many sampling steps breaks the line.
GAP_STEPS = 3.0

# Chart geometry in SVG user units (the SVG scales to the page width).
WIDTH, LEFT, RIGHT = 1200, 64, 80
COMMIT_TOP, COMMIT_HEIGHT = 50, 250
AVAIL_TOP, AVAIL_HEIGHT = 334, 140
LANE_TOP, LANE_HEIGHT = 492, 14
AXIS_Y = LANE_TOP + LANE_HEIGHT + 20
HEIGHT = AXIS_Y + 14
PLOT_WIDTH = WIDTH - LEFT - RIGHT

# Candidate spacings of the time axis's ticks, in seconds.
TICK_STEPS = ([60 * m for m in (1, 5, 10, 15, 30)] + [3600 * h for h in (1, 2, 3, 6, 12)]
              + [86400 * d for d in (1, 2, 7, 14, 30)])


@valueclass
class Point:
    """One drawable sample: epoch seconds, the three percents, the seconds it stands for."""

    t: float
    commit: float | None
    limit: float | None
    available: float | None
    resolution: float


# A character reference (&#x202e;) would still reorder the text once parsed: show these as \uXXXX.
_SHOWN_AS_CODE = {ord(c): f"\\u{ord(c):04x}" for c in BIDI_AND_LINE_SEPARATORS}


def esc(value: Any) -> str:
    """Text for HTML: None as a dash, everything else escaped, quotes included; bidirectional
    and line-separator characters shown as \\uXXXX, so a process name cannot reorder a line."""
    if value is None:
        return "–"
    return html.escape(str(value), quote=True).translate(_SHOWN_AS_CODE)


# -- series ------------------------------------------------------------------------------

def chart_points(store: Store, host: str, since: datetime, until: datetime,
                 max_points: int = MAX_POINTS) -> tuple[list[Point], int, float | None, float | None]:
    """The points to draw of `host`'s samples in [since, until], how many samples there are,
    the highest %commit and the lowest MemAvailable percent among them.

    The database reduces the samples to `max_points` equal slices of time first, keeping
    the worst of each series per slice (highest commit, lowest available), so a spike of
    one sample survives as it does in the store's means. Where the samples are fewer than
    that, each is drawn as it is.
    """
    slices = store.series_slices(host, since, until, max_points)
    total = sum(row.samples for row in slices)
    commits = [row.commit_percent for row in slices if row.commit_percent is not None]
    available = [row.mem_available_percent for row in slices if row.mem_available_percent is not None]
    peak, lowest = (max(commits) if commits else None), (min(available) if available else None)
    if total <= max_points:
        rows, width = store.series(host, since, until), 0.0
    else:
        rows, width = slices, (until - since).total_seconds() / max_points
    points = [Point(row.time.timestamp(), row.commit_percent, row.commit_limit_percent, row.mem_available_percent,
                    max(width, row.resolution or 0)) for row in rows]
    return points, total, peak, lowest


def _median(values: Sequence[float]) -> float:
    """The median (0 for none), without loading `statistics` for one figure."""
    ordered, middle = sorted(values), len(values) // 2
    if not ordered:
        return 0.0
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def segments(points: Sequence[Point], series: str) -> list[list[Point]]:
    """The runs of `points` to join by a line: broken where the value is missing and where
    the samples pause (the daemon was stopped, the machine was down)."""
    steps = [b.t - a.t for a, b in zip(points, points[1:], strict=False)]
    typical = _median(steps)
    runs: list[list[Point]] = []
    previous: Point | None = None
    for point in points:
        if getattr(point, series) is None:
            previous = None
            continue
        step = max(typical, point.resolution, previous.resolution if previous else 0.0)
        if previous is None or point.t - previous.t > GAP_STEPS * step:
            runs.append([])
        runs[-1].append(point)
        previous = point
    return runs


# -- drawing -----------------------------------------------------------------------------

@valueclass
class Scale:
    """Maps time to x and a percent to y inside one panel."""

    t0: float
    t1: float
    top: float
    height: float
    high: float

    def x(self, t: float) -> float:
        return LEFT + (t - self.t0) / ((self.t1 - self.t0) or 1.0) * PLOT_WIDTH

    def y(self, value: float) -> float:
        clamped = min(max(value, 0.0), self.high)
        return self.top + self.height - clamped / self.high * self.height


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _percent_axis_top(values: Iterable[float], floor: float) -> float:
    """A round top for the commit axis: room above the highest value and the thresholds."""
    high = max([floor, *values])
    step = 25.0 if high <= 200 else 50.0 if high <= 400 else 100.0
    return step * (int(high * 1.05 // step) + 1)


def _polyline(run: Sequence[Point], series: str, scale: Scale, css: str) -> str:
    coords = " ".join(f"{_num(scale.x(p.t))},{_num(scale.y(getattr(p, series)))}" for p in run)
    return f'<polyline class="series {css}" data-series="{series}" points="{coords}"/>'


def _area(run: Sequence[Point], series: str, scale: Scale, css: str) -> str:
    base = _num(scale.top + scale.height)
    coords = " ".join(f"{_num(scale.x(p.t))},{_num(scale.y(getattr(p, series)))}" for p in run)
    return (f'<polygon class="area {css}" points="{_num(scale.x(run[0].t))},{base} {coords} '
            f'{_num(scale.x(run[-1].t))},{base}"/>')


def _grid(scale: Scale, ticks: Sequence[float], label: str, label_y: float) -> list[str]:
    out = [f'<rect class="panel" x="{LEFT}" y="{scale.top}" width="{PLOT_WIDTH}" height="{scale.height}"/>']
    for value in ticks:
        y = _num(scale.y(value))
        out.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + PLOT_WIDTH}" y1="{y}" y2="{y}"/>')
        out.append(f'<text class="ytick" x="{LEFT - 8}" y="{y}" dy="4">{_num(value)}%</text>')
    out.append(f'<text class="ylabel" x="{LEFT}" y="{label_y}">{esc(label)}</text>')
    return out


def _thresholds(scale: Scale, warn: float, crit: float) -> list[str]:
    """The warn and crit lines of a panel, labelled at the right; labels of lines
    drawn close together are pushed apart so both stay readable."""
    y_warn, y_crit = scale.y(warn), scale.y(crit)
    room = 12.0 - abs(y_warn - y_crit)
    nudge = max(room, 0.0) / 2 * (1 if y_warn > y_crit else -1)
    out = []
    for severity, value, y, shift in (("warning", warn, y_warn, nudge), ("critical", crit, y_crit, -nudge)):
        label = f"{'warn' if severity == 'warning' else 'crit'} {_num(value)}%"
        out.append(f'<g class="threshold {severity}"><title>{esc(label)}</title>'
                   f'<line x1="{LEFT}" x2="{LEFT + PLOT_WIDTH}" y1="{_num(y)}" y2="{_num(y)}"/>'
                   f'<text x="{LEFT + PLOT_WIDTH + 6}" y="{_num(y + shift)}" dy="4">{esc(label)}</text></g>')
    return out


def _time_ticks(t0: float, t1: float, tz: tzinfo) -> list[tuple[float, str]]:
    """Round times along the axis, aligned in the report's time zone, with short labels."""
    span = max(t1 - t0, 1.0)
    step = next((s for s in TICK_STEPS if span / s <= 8), TICK_STEPS[-1])
    offset = datetime.fromtimestamp(t0, tz).utcoffset() or timedelta(0)
    shift = offset.total_seconds()
    t = ((t0 + shift) // step + 1) * step - shift
    ticks, last_day = [], None
    while t < t1:
        moment = datetime.fromtimestamp(t, tz)
        day = moment.date()
        if step >= 86400:
            label = moment.strftime("%b %d")
        elif day != last_day:
            label = moment.strftime("%b %d %H:%M")
        else:
            label = moment.strftime("%H:%M")
        ticks.append((t, label))
        last_day = day
        t += step
    return ticks


def _kill_title(kill: Any, tz: tzinfo) -> str:
    cgroup = kill.task_memcg or kill.memcg
    who = f"pid {kill.pid}" if kill.pid is not None else "cgroup"
    parts = [f"{_time(kill.time, tz)}: {kill.process} ({who}) killed by {kill.killer}"]
    if kill.anon_rss_kb is not None:
        parts.append(f"anon-rss {_kib(kill.anon_rss_kb)}")
    if cgroup:
        parts.append(f"cgroup {cgroup}")
    return ", ".join(parts)


def _kill_markers(kills: Sequence[Any], scale: Scale, bottom: float, tz: tzinfo) -> list[str]:
    """One marker per kill; kills closer than MARKER_SPACING share a marker that counts them."""
    groups: list[list[Any]] = []
    for kill in kills:
        if groups and scale.x(kill.time.timestamp()) - scale.x(groups[-1][0].time.timestamp()) < MARKER_SPACING:
            groups[-1].append(kill)
        else:
            groups.append([kill])
    out = []
    for group in groups:
        x = _num(sum(scale.x(k.time.timestamp()) for k in group) / len(group))
        if len(group) == 1:
            title = _kill_title(group[0], tz)
            head = f'<path class="kill-head" d="M{x},{COMMIT_TOP - 2} l-5,-9 h10 z"/>'
        else:
            names = Counter(k.process for k in group).most_common(6)
            listed = ", ".join(f"{name} ×{n}" for name, n in names)
            more = len({k.process for k in group}) - len(names)
            title = (f"{len(group)} kills from {_time(group[0].time, tz)} to {_time(group[-1].time, tz)}: "
                     f"{listed}{f' and {more} more processes' if more > 0 else ''}")
            if len(group) <= 12:
                title += "\n" + "\n".join(_kill_title(k, tz) for k in group)
            head = (f'<circle class="kill-head" cx="{x}" cy="{COMMIT_TOP - 10}" r="8"/>'
                    f'<text class="kill-count" x="{x}" y="{COMMIT_TOP - 10}" dy="3.5">'
                    f'{len(group) if len(group) < 100 else "99+"}</text>')
        out.append(
            f'<g class="kill" data-count="{len(group)}"><title>{esc(title)}</title>'
            f'<line class="kill-line" x1="{x}" x2="{x}" y1="{COMMIT_TOP}" y2="{_num(bottom)}"/>'
            f'<line class="kill-hit" x1="{x}" x2="{x}" y1="{COMMIT_TOP - 18}" y2="{_num(bottom)}"/>'
            f"{head}</g>")
    return out


def _alert_lane(alerts: Sequence[AlertEpisode], t0: float, t1: float, scale: Scale, tz: tzinfo) -> list[str]:
    out = [f'<text class="ylabel lane" x="{LEFT - 8}" y="{LANE_TOP + LANE_HEIGHT - 3}">alerts</text>',
           f'<rect class="lane" x="{LEFT}" y="{LANE_TOP}" width="{PLOT_WIDTH}" height="{LANE_HEIGHT}"/>']
    for alert in sorted(alerts, key=lambda a: a.started_at):
        start = max(alert.started_at.timestamp(), t0)
        end = min(alert.resolved_at.timestamp() if alert.resolved_at else t1, t1)
        x0, x1 = scale.x(start), scale.x(end)
        until = _time(alert.resolved_at, tz) if alert.resolved_at else "still firing"
        title = f"{alert.kind} ({alert.severity}) {_time(alert.started_at, tz)} → {until}: {alert.summary}"
        out.append(f'<rect class="episode {esc(_severity(alert.severity))}" x="{_num(x0)}" y="{LANE_TOP}" '
                   f'width="{_num(max(x1 - x0, 2.0))}" height="{LANE_HEIGHT}"><title>{esc(title)}</title></rect>')
    return out


def render_chart(points: Sequence[Point], kills: Sequence[Any], alerts: Sequence[AlertEpisode],
                 t0: float, t1: float, commit: CommitConfig, memory: MemoryConfig, tz: tzinfo) -> str:
    """The SVG: commit percents above, MemAvailable below, kills and alert episodes across both."""
    high = _percent_axis_top([v for p in points for v in (p.commit, p.limit) if v is not None],
                             commit.crit_percent * 1.1)
    top = Scale(t0, t1, COMMIT_TOP, COMMIT_HEIGHT, high)
    low = Scale(t0, t1, AVAIL_TOP, AVAIL_HEIGHT, 100.0)
    step = high / 5 if high <= 125 else 50.0 if high <= 400 else 100.0
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="commit and available memory over time, with OOM kills">']
    parts += _grid(top, [step * i for i in range(int(high // step) + 1)],
                   "Committed memory, % (Committed_AS over RAM + swap, and over CommitLimit)", COMMIT_TOP - 30)
    parts += _grid(low, [0, 25, 50, 75, 100], "MemAvailable, % of MemTotal", AVAIL_TOP - 10)
    for t, label in _time_ticks(t0, t1, tz):
        x = _num(top.x(t))
        for scale in (top, low):
            parts.append(f'<line class="grid" x1="{x}" x2="{x}" y1="{scale.top}" '
                         f'y2="{scale.top + scale.height}"/>')
        parts.append(f'<text class="xtick" x="{x}" y="{AXIS_Y}">{esc(label)}</text>')
    parts += _thresholds(top, commit.warn_percent, commit.crit_percent)
    parts += _thresholds(low, memory.available_warn_percent, memory.available_crit_percent)
    parts += [_area(run, "available", low, "available") for run in segments(points, "available")]
    parts += [_polyline(run, "available", low, "available") for run in segments(points, "available")]
    parts += [_polyline(run, "limit", top, "limit") for run in segments(points, "limit")]
    parts += [_polyline(run, "commit", top, "commit") for run in segments(points, "commit")]
    if not points:
        for scale in (top, low):
            parts.append(f'<text class="empty" x="{LEFT + PLOT_WIDTH / 2}" y="{scale.top + scale.height / 2}">'
                         "no samples in this period</text>")
    parts += _alert_lane(alerts, t0, t1, top, tz)
    parts += _kill_markers(kills, top, AVAIL_TOP + AVAIL_HEIGHT, tz)
    parts.append("</svg>")
    return "\n".join(parts)


# -- the page ----------------------------------------------------------------------------

def _time(value: datetime | None, tz: tzinfo) -> str:
    return "–" if value is None else value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def _kib(kb: int | None) -> str:
    if kb is None:
        return "–"
    value, unit = float(kb), "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}" if unit != "KiB" else f"{kb} KiB"


def _severity(severity: str) -> str:
    return severity if severity in ("info", "warning", "critical") else "info"


def _span(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds / size
            return f"{_num(n)} {unit}{'' if n == 1 else 's'}"
    return f"{int(seconds)} seconds"


def _card(label: str, value: str, note: str = "") -> str:
    return (f'<div class="card"><div class="label">{esc(label)}</div><div class="value">{esc(value)}</div>'
            f'<div class="note">{esc(note)}</div></div>')


def _kills_table(kills: Sequence[StoredKill], total: int, tz: tzinfo) -> str:
    if not kills:
        return '<p class="none">No kills in this period.</p>'
    rows = []
    for k in kills:
        cgroup = k.task_memcg or k.memcg
        rows.append(
            f'<tr><td class="time">{esc(_time(k.time, tz))}</td><td class="host">{esc(k.host)}</td>'
            f'<td class="num">{esc(k.pid)}</td><td class="proc">{esc(k.process)}</td><td class="num">{esc(k.uid)}</td>'
            f'<td class="num">{esc(_kib(k.anon_rss_kb))}</td><td>{esc(k.constraint)}</td>'
            # A break opportunity after each slash: long cgroup paths wrap at their levels.
            f'<td class="mono">{esc(cgroup).replace("/", "/<wbr>")}</td><td>{esc(k.killer)}</td>'
            f'<td class="mono cmd">{esc(k.cmdline)}</td></tr>')
    note = (f'<p class="more">The newest {len(kills)} of {total} kills are listed; '
            f"<code>watchdog-oom history kills --since …</code> prints them all.</p>" if total > len(kills) else "")
    return ('<table class="kills"><thead><tr><th>Time</th><th>Host</th><th>PID</th><th>Process</th><th>UID</th>'
            '<th>Anon RSS</th><th>Constraint</th><th>Cgroup</th><th>Killer</th><th>Command line</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>{note}')


def _alerts_table(alerts: Sequence[AlertEpisode], total: int, tz: tzinfo) -> str:
    if not alerts:
        return '<p class="none">No alerts in this period.</p>'
    rows = []
    for a in alerts:
        resolved = _time(a.resolved_at, tz) if a.resolved_at else "firing"
        rows.append(
            f'<tr><td class="time">{esc(_time(a.started_at, tz))}</td><td class="time">{esc(resolved)}</td>'
            f'<td>{esc(a.kind)}</td><td><span class="badge {esc(_severity(a.severity))}">{esc(a.severity)}</span></td>'
            f"<td>{esc(a.summary)}</td></tr>")
    note = (f'<p class="more">The newest {len(alerts)} of {total} alerts are listed; '
            f"<code>watchdog-oom history alerts --since …</code> prints them all.</p>" if total > len(alerts) else "")
    return ('<table class="alerts"><thead><tr><th>Started</th><th>Resolved</th><th>Kind</th><th>Severity</th>'
            f'<th>Summary</th></tr></thead><tbody>{"".join(rows)}</tbody></table>{note}')


def _sparkline(series: Sequence[tuple[datetime, float | None, Any]], t0: float, t1: float) -> str:
    """The working set in percent of the limit over the period, 0 to 100, as a small SVG line."""
    width, height = 240.0, 28.0
    span = max(t1 - t0, 1.0)
    points = [(width * (t.timestamp() - t0) / span, height * (1 - min(max(p, 0.0), 100.0) / 100))
              for t, p, _ in series if p is not None]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    warn_y = height * 0.15
    return (f'<svg class="spark" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
            f'role="img" aria-label="working set, percent of the limit">'
            f'<line x1="0" x2="{width:.0f}" y1="{warn_y:.1f}" y2="{warn_y:.1f}" class="sparkwarn"/>'
            f'<polyline points="{line}" class="sparkline"/></svg>')


def _cgroups_table(series: dict[str, list[Any]], t0: float, t1: float) -> str:
    """The cgroups that came closest to their memory limit in the period."""
    if not series:
        return ('<p class="none">No cgroup samples in this period (containers and services with a memory '
                "limit are kept when above the warning level or among the closest to their limit).</p>")
    rows = []
    for path, points in sorted(series.items(), key=lambda kv: -max((p or 0) for _, p, _ in kv[1])):
        percents = [p for _, p, _ in points if p is not None]
        name = next((n for _, _, n in reversed(points) if n), path)
        rows.append(
            f'<tr><td>{esc(name)}</td><td class="num">{max(percents):.1f}%</td><td class="num">{percents[-1]:.1f}%</td>'
            f"<td>{_sparkline(points, t0, t1)}</td>"
            f'<td class="mono">{esc(path).replace("/", "/<wbr>")}</td></tr>')
    return ('<table class="cgroups"><thead><tr><th>Cgroup</th><th>Peak</th><th>Last</th>'
            '<th>Working set / limit</th><th>Path</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def render_report(store: Store, since: datetime, now: datetime, host: str | None = None, *,
                  commit: CommitConfig | None = None, memory: MemoryConfig | None = None) -> str:
    """The report of `host` (default: the store's own) from `since` to `now`, as one HTML page.

    Times are shown in the time zone of `now`; the threshold lines are those of `commit`
    and `memory` (the built-in defaults unless the caller passes its configuration).
    """
    if now.tzinfo is None or since.tzinfo is None:
        raise ValueError("since and now must carry a time zone")
    host = host or store.host
    commit, memory = commit or CommitConfig(), memory or MemoryConfig()
    tz = now.tzinfo
    t0, t1 = since.timestamp(), now.timestamp()
    points, total, peak, lowest = chart_points(store, host, since, now)
    marks = store.kill_marks(host, since, now)
    kills = store.kills(host=host, since=since, until=now, limit=TABLE_LIMIT)
    alerts, alert_total = store.alerts_overlapping(host, since, now, TABLE_LIMIT)
    cgroup_series = store.cgroup_slices(host, since, now, SPARK_POINTS)

    top = Counter(k.process for k in marks).most_common(3)
    cards = "".join((
        _card("OOM kills", str(len(marks)), ", ".join(f"{name} ×{n}" for name, n in top)),
        _card("Alerts", str(alert_total),
              f"{sum(1 for a in alerts if a.resolved_at is None)} still firing" if alerts else ""),
        _card("Peak %commit", f"{peak:.1f}%" if peak is not None else "–",
              f"warn {_num(commit.warn_percent)}%, crit {_num(commit.crit_percent)}%"),
        _card("Lowest MemAvailable", f"{lowest:.1f}%" if lowest is not None else "–",
              f"warn {_num(memory.available_warn_percent)}%, crit {_num(memory.available_crit_percent)}%"),
        _card("Samples", f"{total:,}", f"drawn as {len(points):,} points" if len(points) < total else ""),
    ))
    tz_name = now.astimezone(tz).strftime("%Z") or now.astimezone(tz).strftime("%z")
    period = f"{_time(since, tz)} to {_time(now, tz)} {tz_name} ({_span(t1 - t0)})"
    chart = render_chart(points, marks, alerts, t0, t1, commit, memory, tz)
    legend = (
        '<div class="legend">'
        '<span><i class="sw commit"></i>%commit (<code>sar -r</code>): Committed_AS / (RAM + swap)</span>'
        '<span><i class="sw limit"></i>Committed_AS / CommitLimit</span>'
        '<span><i class="sw available"></i>MemAvailable / MemTotal</span>'
        '<span><i class="sw kill"></i>OOM kill</span>'
        '<span><i class="sw warning"></i>warning</span><span><i class="sw critical"></i>critical</span>'
        "</div>")
    if len(points) < total:
        legend += ('<p class="more">Each point shows the highest commit and the lowest available memory '
                   "of its slice of time, so no spike is smoothed away.</p>")
    return PAGE.format(
        title=esc(f"watchdog-oom report: {host}"), host=esc(host), period=esc(period), cards=cards, chart=chart,
        legend=legend, tz=esc(tz_name), kill_total=len(marks), kills=_kills_table(kills, len(marks), tz),
        alert_total=alert_total, alerts=_alerts_table(alerts, alert_total, tz), css=CSS,
        cgroup_total=len(cgroup_series), cgroups=_cgroups_table(cgroup_series, t0, t1),
        footer=esc(f"Generated by watchdog-oom {__version__} at {_time(now, tz)} {tz_name}."),
    )


CSS = """
:root { --fg: #0f172a; --muted: #64748b; --line: #e2e8f0; --bg: #f8fafc; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 28px 32px 40px; }
header h1 { font-size: 22px; margin: 0 0 4px; font-weight: 650; }
header p { margin: 0; color: var(--muted); }
h2 { font-size: 16px; margin: 32px 0 10px; font-weight: 650; }
h2 .count { color: var(--muted); font-weight: 500; }
svg.spark { display: block; }
.sparkline { fill: none; stroke: #7c3aed; stroke-width: 1.5; }
.sparkwarn { stroke: #f59e0b; stroke-dasharray: 3 3; stroke-width: 1; }
.cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; margin: 20px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
.card .note { color: var(--muted); font-size: 12px; min-height: 1.2em; overflow: hidden; text-overflow: ellipsis;
              white-space: nowrap; }
section.chart { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 12px 8px; }
svg.chart { width: 100%; height: auto; display: block; font-size: 12px; }
svg .panel { fill: #fff; stroke: #cbd5e1; }
svg .lane { fill: #f1f5f9; }
svg .grid { stroke: #eef2f6; }
svg .ytick { fill: var(--muted); text-anchor: end; font-variant-numeric: tabular-nums; }
svg .xtick { fill: var(--muted); text-anchor: middle; font-variant-numeric: tabular-nums; }
svg .ylabel { fill: #334155; font-weight: 600; }
svg .ylabel.lane { text-anchor: end; font-weight: 500; fill: var(--muted); }
svg .series { fill: none; stroke-width: 1.6; stroke-linejoin: round; stroke-linecap: round; }
svg .series.commit { stroke: #2563eb; }
svg .series.limit { stroke: #7c3aed; stroke-width: 1.2; stroke-dasharray: 5 3; }
svg .series.available { stroke: #059669; }
svg .area.available { fill: #05966918; stroke: none; }
svg .threshold line { stroke-width: 1; stroke-dasharray: 6 4; }
svg .threshold text { font-size: 11px; font-weight: 600; }
svg .threshold.warning line { stroke: #d97706; } svg .threshold.warning text { fill: #b45309; }
svg .threshold.critical line { stroke: #dc2626; } svg .threshold.critical text { fill: #b91c1c; }
svg .episode.warning { fill: #f59e0b; } svg .episode.critical { fill: #dc2626; } svg .episode.info { fill: #94a3b8; }
svg .kill-line { stroke: #b91c1c; stroke-width: 1; opacity: .55; }
svg .kill-hit { stroke: transparent; stroke-width: 9; }
svg .kill-head { fill: #b91c1c; }
svg .kill-count { fill: #fff; font-size: 9px; font-weight: 700; text-anchor: middle; }
svg .kill:hover .kill-line { opacity: 1; stroke-width: 2; }
svg .empty { fill: var(--muted); text-anchor: middle; font-size: 15px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; padding: 8px 8px 2px; color: #334155; font-size: 12.5px; }
.legend .sw { display: inline-block; width: 18px; height: 3px; vertical-align: middle; margin-right: 6px;
              border-radius: 2px; }
.sw.commit { background: #2563eb; } .sw.limit { background: #7c3aed; } .sw.available { background: #059669; }
.sw.kill { background: #b91c1c; width: 3px; height: 12px; } .sw.warning { background: #d97706; }
.sw.critical { background: #dc2626; }
p.more, p.none { color: var(--muted); margin: 8px 2px; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); font-size: 13px; }
th { text-align: left; font-weight: 600; color: #334155; background: #f1f5f9; padding: 7px 10px;
     border-bottom: 1px solid var(--line); white-space: nowrap; position: sticky; top: 0; }
td { padding: 6px 10px; border-bottom: 1px solid #f1f5f9; vertical-align: top; }
tbody tr:nth-child(even) { background: #fbfdff; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.time, td.host { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.proc { font-weight: 600; }
td.mono, code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
                font-size: 12px; }
td.cmd { word-break: break-all; }
td.cmd { max-width: 420px; color: #334155; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.badge.warning { background: #fef3c7; color: #92400e; } .badge.critical { background: #fee2e2; color: #991b1b; }
.badge.info { background: #e2e8f0; color: #334155; }
footer { margin-top: 28px; color: var(--muted); font-size: 12px; }
@media print { body { background: #fff; } th { position: static; } }
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<main>
<header>
<h1>Memory and OOM kills on {host}</h1>
<p>{period}</p>
</header>
<div class="cards">{cards}</div>
<section class="chart">
{chart}
{legend}
</section>
<h2>Kills <span class="count">({kill_total})</span></h2>
{kills}
<h2>Cgroups closest to their memory limit <span class="count">({cgroup_total})</span></h2>
{cgroups}
<h2>Alerts <span class="count">({alert_total})</span></h2>
{alerts}
<footer>{footer} Times are in {tz}. Hover a marker on the chart for the process it names.</footer>
</main>
</body>
</html>
"""
