"""Rendering: the Jinja2 environment of the UI's templates, its filters and the page frame.

Templates live in ``templates/`` (pages) and ``templates/parts/`` (fragments that htmx swaps
in, and that pages include). Autoescaping is on for everything: ids, names, labels and
messages come from frameworks and agents and are never trusted as HTML.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi.responses import HTMLResponse

__all__ = [
    "NAV",
    "STATIC_DIR",
    "Renderer",
    "duration",
    "format_amount",
    "state_class",
]

STATIC_DIR = Path(__file__).with_name("static")
"""Vendored libraries and the UI's own CSS and scripts, served under ``/ui/static/``."""

NAV = (
    ("overview", "Overview", "/"),
    ("agents", "Agents", "/ui/agents"),
    ("frameworks", "Frameworks", "/ui/frameworks"),
    ("tasks", "Tasks", "/ui/tasks"),
    ("roles", "Roles", "/ui/roles"),
    ("offers", "Offers", "/ui/offers"),
)
"""The navigation bar: (page key, label, path)."""

_GOOD = {"TASK_RUNNING", "TASK_FINISHED", "connected"}
_BAD = {
    "TASK_FAILED",
    "TASK_ERROR",
    "TASK_LOST",
    "TASK_DROPPED",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
    "unreachable",
}
_WAIT = {"TASK_STAGING", "TASK_STARTING", "TASK_KILLING", "recovering", "disconnected"}


def state_class(state: str) -> str:
    """The CSS class colouring a task state or agent phase."""
    if state in _GOOD:
        return "good"
    if state in _BAD:
        return "bad"
    if state in _WAIT:
        return "wait"
    return "other"


def format_amount(name: str, value: float) -> str:
    """A resource amount for people: mem and disk in MB/GB/TB, others as short numbers."""
    if name in ("mem", "disk"):
        for unit, size in (("TB", 1024.0 * 1024.0), ("GB", 1024.0)):
            if abs(value) >= size:
                return f"{value / size:.1f} {unit}"
        return f"{value:.0f} MB"
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def duration(seconds: float) -> str:
    """A duration in the largest sensible unit: ``42 s``, ``3 min``, ``5 h 2 min``, ``2 d 4 h``."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _timestamp(value: float | None) -> str:
    if not value:
        return "\N{EN DASH}"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


def _filesize(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.0f}%"


def _query(params: Mapping[str, Any], **changes: Any) -> str:
    """``?a=1&b=2``: ``params`` with ``changes`` applied, empty values dropped."""
    merged = {**params, **changes}
    kept = {k: v for k, v in merged.items() if v not in (None, "", False)}
    return "?" + urlencode(kept) if kept else "?"


class Renderer:
    """Renderer renders the UI's templates with the frame every page shares.

    ``clock`` gives seconds since the epoch (for "elected 3 min ago").
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("master.http.ui", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            ago=lambda t: duration(self._clock() - t) + " ago" if t else "never",
            until=lambda t: "in " + duration(t - self._clock()) if t else "\N{EN DASH}",
            timestamp=_timestamp,
            percent=_percent,
            amount=lambda value, name: format_amount(name, value),
            state_class=state_class,
            q=lambda s: quote(str(s), safe=""),
            duration=duration,
            filesize=_filesize,
        )
        self.env.globals.update(
            nav=NAV,
            url=lambda path: path,
            static=lambda path: f"/ui/static/{path}",
            query=_query,
            resource_names=("cpus", "mem", "disk", "gpus"),
        )

    def render(self, template: str, **context: Any) -> str:
        """``template`` rendered with ``context``."""
        return self.env.get_template(template).render(**context)

    def page(self, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        """An HTML response of ``template`` (a page extending ``base.html`` or a fragment)."""
        return HTMLResponse(
            self.render(template, **context),
            status_code=status_code,
            headers={"Cache-Control": "no-store"},
        )
