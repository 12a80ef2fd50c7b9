"""The state machine graph: laid out from the ASL definition, coloured from the execution
history, drawn as inline SVG in Python (no JavaScript library, nothing from a CDN).

The layout is layered: a state's row is the longest path to it from `StartAt`, so every
transition goes down the page; a Map state is a box holding its own states' layout. The
history is read by each event's `previousEventId` chain, not by order: the iterations of a
Map run at once and their events interleave, so an event belongs to the iteration whose
`MapIterationStarted` its chain leads back to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from markupsafe import Markup, escape

COLOURS: Final = {
    "succeeded": "#2BD62E",
    "failed": "#DE322F",
    "caught": "#FFA500",
    "running": "#53C9ED",
    "not-reached": "#DDDDDD",
}
SEVERITY: Final = ("failed", "caught", "running", "succeeded", "not-reached")
"""What an aggregate over a Map's iterations shows: the worst that happened in any of them."""

BOX_HEIGHT: Final = 34
CHAR_WIDTH: Final = 7.2
ROW_GAP: Final = 38
COLUMN_GAP: Final = 26
MAP_PADDING: Final = 16
MAP_HEADER: Final = 26

MAP_ENDS: Final = frozenset({"MapStateSucceeded", "MapStateFailed", "MapStateAborted", "MapStateExited"})
EXECUTION_ENDS: Final = frozenset(
    {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}
)


# ---------------------------------------------------------------------------- layout
@dataclass
class Box:
    name: str
    kind: str
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    height: float = BOX_HEIGHT
    inner: Layout | None = None


@dataclass
class Edge:
    source: str
    target: str
    kind: str  # next | choice | default | catch


@dataclass
class Layout:
    boxes: dict[str, Box] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def transitions(state: dict[str, Any]) -> list[tuple[str, str]]:
    """(target, kind) of every transition a state can take."""
    found = [(str(c["Next"]), "choice") for c in state.get("Choices", []) if "Next" in c]
    if "Default" in state:
        found.append((str(state["Default"]), "default"))
    if "Next" in state:
        found.append((str(state["Next"]), "next"))
    found += [(str(c["Next"]), "catch") for c in state.get("Catch", []) if "Next" in c]
    return found


def inner_machine(state: dict[str, Any]) -> dict[str, Any] | None:
    """A Map state's own machine (ItemProcessor, or the older Iterator)."""
    machine = state.get("ItemProcessor") or state.get("Iterator")
    return machine if isinstance(machine, dict) and "States" in machine else None


def layout(machine: dict[str, Any]) -> Layout:
    states: dict[str, dict[str, Any]] = machine["States"]
    result = Layout()
    for name, state in states.items():
        box = Box(name, str(state.get("Type", "")))
        inner = inner_machine(state)
        if inner is not None:
            box.inner = layout(inner)
            box.width = max(box.inner.width + 2 * MAP_PADDING, _text_width(name))
            box.height = box.inner.height + MAP_HEADER + MAP_PADDING
        else:
            box.width = _text_width(name)
        result.boxes[name] = box
        result.edges += [Edge(name, target, kind) for target, kind in transitions(state) if target in states]
    rows = _rows(str(machine["StartAt"]), states)
    by_row: dict[int, list[str]] = {}
    for name in states:  # the definition's order within a row
        by_row.setdefault(rows[name], []).append(name)
    y = 0.0
    widths = {
        row: sum(result.boxes[n].width for n in names) + COLUMN_GAP * (len(names) - 1)
        for row, names in by_row.items()
    }
    result.width = max(widths.values(), default=0.0)
    for row in sorted(by_row):
        x = (result.width - widths[row]) / 2
        height = max(result.boxes[n].height for n in by_row[row])
        for name in by_row[row]:
            box = result.boxes[name]
            box.x, box.y = x, y + (height - box.height) / 2
            x += box.width + COLUMN_GAP
        y += height + ROW_GAP
    result.height = max(0.0, y - ROW_GAP)
    return result


def _text_width(name: str) -> float:
    return max(96.0, len(name) * CHAR_WIDTH + 28)


def _rows(start: str, states: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Each state's row: the longest path to it from `start`, ignoring transitions back up
    (a loop); states no path reaches go below the rest."""
    order: list[str] = []
    visiting: set[str] = set()
    done: set[str] = set()
    back_edges: set[tuple[str, str]] = set()

    def visit(name: str) -> None:
        visiting.add(name)
        for target, _ in transitions(states[name]):
            if target not in states:
                continue
            if target in visiting:
                back_edges.add((name, target))
            elif target not in done:
                visit(target)
        visiting.discard(name)
        done.add(name)
        order.append(name)

    if start in states:
        visit(start)
    rows = dict.fromkeys(order, 0)
    for name in reversed(order):  # a topological order of the forward transitions
        for target, _ in transitions(states[name]):
            if target in rows and (name, target) not in back_edges:
                rows[target] = max(rows[target], rows[name] + 1)
    last = max(rows.values(), default=-1) + 1
    return {name: rows.get(name, last) for name in states}


# ---------------------------------------------------------------------------- history
@dataclass
class Attempt:
    scheduled: datetime
    ended: datetime | None = None
    outcome: str = "running"  # running | succeeded | failed
    error: str = ""
    cause: str = ""
    delay: float | None = None
    """Seconds between the previous attempt's failure and this one (the retry's wait)."""


@dataclass
class Run:
    """One entry into a state: what went in and out, each attempt, how it ended."""

    name: str
    kind: str
    entered: datetime
    input: str = ""
    exited: datetime | None = None
    output: str = ""
    status: str = "running"
    error: str = ""
    cause: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)

    @property
    def retries(self) -> int:
        return max(0, len(self.attempts) - 1)

    @property
    def seconds(self) -> float | None:
        return None if self.exited is None else (self.exited - self.entered).total_seconds()


Scope = tuple[str, int] | None
"""None: the top level; (map state, index): one iteration of a Map."""


@dataclass
class Runs:
    top: dict[str, list[Run]] = field(default_factory=dict)
    iterations: dict[str, dict[int, dict[str, list[Run]]]] = field(default_factory=dict)
    """Map state -> iteration index -> state -> its runs in that iteration."""
    scope_of: dict[int, Scope] = field(default_factory=dict)
    """Event id -> the scope it belongs to."""

    def in_scope(self, scope: Scope) -> dict[str, list[Run]]:
        if scope is None:
            return self.top
        return self.iterations.setdefault(scope[0], {}).setdefault(scope[1], {})


def _details(event: dict[str, Any]) -> dict[str, Any]:
    return next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})


def read_runs(events: list[dict[str, Any]], execution_status: str) -> Runs:
    runs = Runs()
    open_runs: dict[Scope, Run] = {}
    failed_at: datetime | None = None
    for event in events:
        kind = str(event["type"])
        event_id = int(event["id"])
        previous = int(event.get("previousEventId") or 0)
        details = _details(event)
        scope: Scope
        if kind == "MapIterationStarted":
            scope = (str(details.get("name", "")), int(details.get("index", 0)))
        elif kind in MAP_ENDS or kind in EXECUTION_ENDS:
            scope = None
        else:
            scope = runs.scope_of.get(previous)
        runs.scope_of[event_id] = scope
        current = open_runs.get(scope)
        if kind.endswith("StateEntered"):
            if current is not None and current.status == "running":
                # A state left without an Exited event (a Catch whose exit moto omits): the
                # next state of the same scope entered, so it was caught.
                current.status = (
                    "caught" if current.attempts and current.attempts[-1].outcome == "failed" else "succeeded"
                )
            run = Run(str(details.get("name", "")), kind.removesuffix("StateEntered"), event["timestamp"],
                      input=str(details.get("input", "")))  # fmt: skip
            run.event_ids.append(event_id)
            runs.in_scope(scope).setdefault(run.name, []).append(run)
            open_runs[scope] = run
            if kind == "FailStateEntered":
                run.status = "failed"
            continue
        if current is None:
            if kind == "ExecutionFailed":
                failed_at = event["timestamp"]
            continue
        current.event_ids.append(event_id)
        if kind == "TaskScheduled":
            attempt = Attempt(event["timestamp"])
            if current.attempts and current.attempts[-1].ended is not None:
                attempt.delay = (event["timestamp"] - current.attempts[-1].ended).total_seconds()
            current.attempts.append(attempt)
        elif kind in ("TaskSucceeded", "TaskFailed", "TaskTimedOut", "TaskStartFailed", "TaskSubmitFailed"):
            if current.attempts:
                attempt = current.attempts[-1]
                attempt.ended = event["timestamp"]
                attempt.outcome = "succeeded" if kind == "TaskSucceeded" else "failed"
                attempt.error = str(details.get("error", ""))
                attempt.cause = str(details.get("cause", ""))
            if kind != "TaskSucceeded":
                current.error = str(details.get("error", ""))
                current.cause = str(details.get("cause", ""))
        elif kind in ("MapStateFailed", "ExecutionFailed"):
            if current.status != "failed" or not current.error:
                current.status = "failed"
                current.error = current.error or str(details.get("error", ""))
                current.cause = current.cause or str(details.get("cause", ""))
            current.exited = current.exited or event["timestamp"]
        elif kind.endswith("StateExited"):
            current.exited = event["timestamp"]
            current.output = str(details.get("output", ""))
            if current.status == "running":
                failed_last = bool(current.attempts) and current.attempts[-1].outcome == "failed"
                current.status = "caught" if failed_last else "succeeded"
        elif kind in ("MapIterationFailed", "MapIterationAborted") and current.status == "running":
            current.status = "failed"
    # States still open when the execution ended failed there (an uncaught error).
    if execution_status not in ("RUNNING", "PENDING_REDRIVE"):
        for scoped in _all_scopes(runs):
            for state_runs in scoped.values():
                for run in state_runs:
                    if run.status == "running":
                        run.status = "failed"
                        run.exited = run.exited or failed_at
    return runs


def _all_scopes(runs: Runs) -> list[dict[str, list[Run]]]:
    scopes = [runs.top]
    for by_index in runs.iterations.values():
        scopes.extend(by_index.values())
    return scopes


def status_of(state_runs: list[Run]) -> tuple[str, int]:
    """(colour name, retries) of a state from its runs: the worst outcome among them."""
    if not state_runs:
        return "not-reached", 0
    worst = min(SEVERITY.index(run.status) for run in state_runs)
    return SEVERITY[worst], sum(run.retries for run in state_runs)


def statuses(machine: dict[str, Any], runs: Runs, iteration: int | None) -> dict[str, tuple[str, int]]:
    """State name -> (status, retries): the top level's states from their runs; a Map's
    inner states from one iteration, or from all of them when `iteration` is None."""
    found: dict[str, tuple[str, int]] = {}
    for name, state in machine["States"].items():
        found[name] = status_of(runs.top.get(name, []))
        inner = inner_machine(state)
        if inner is None:
            continue
        by_index = runs.iterations.get(name, {})
        chosen = [by_index.get(iteration, {})] if iteration is not None else list(by_index.values())
        for inner_name in inner["States"]:
            found[inner_name] = status_of([run for scoped in chosen for run in scoped.get(inner_name, [])])
    return found


# ---------------------------------------------------------------------------- SVG
def svg(machine: dict[str, Any], coloured: dict[str, tuple[str, int]], selected: str | None = None) -> Markup:
    drawn = layout(machine)
    margin = 12
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img" aria-label="state machine" '
        f'width="{drawn.width + 2 * margin:.0f}" height="{drawn.height + 2 * margin:.0f}" '
        f'viewBox="{-margin} {-margin} {drawn.width + 2 * margin:.0f} {drawn.height + 2 * margin:.0f}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#666"/></marker></defs>',
    ]
    _draw(drawn, 0.0, 0.0, coloured, selected, parts)
    parts.append("</svg>")
    # Every name in it went through escape(); the rest is numbers and fixed text.
    return Markup("".join(parts))  # noqa: S704


def _draw(drawn: Layout, dx: float, dy: float, coloured: dict[str, tuple[str, int]], selected: str | None,
          parts: list[str]) -> None:  # fmt: skip
    for edge in drawn.edges:
        a, b = drawn.boxes[edge.source], drawn.boxes[edge.target]
        x1, y1 = dx + a.x + a.width / 2, dy + a.y + a.height
        x2, y2 = dx + b.x + b.width / 2, dy + b.y
        if b.y <= a.y:  # a transition back up: leave from the side
            x1, y1 = dx + a.x + a.width, dy + a.y + a.height / 2
        mid = (y1 + y2) / 2
        dash = ' stroke-dasharray="5 3"' if edge.kind == "catch" else ""
        parts.append(
            f'<path class="edge edge-{edge.kind}" d="M {x1:.1f} {y1:.1f} C {x1:.1f} {mid:.1f} '
            f'{x2:.1f} {mid:.1f} {x2:.1f} {y2:.1f}" fill="none" stroke="#666" stroke-width="1.2"{dash} '
            'marker-end="url(#arrow)"/>'
        )
    for box in drawn.boxes.values():
        status, retries = coloured.get(box.name, ("not-reached", 0))
        x, y, w, h = dx + box.x, dy + box.y, box.width, box.height
        name = escape(box.name)
        classes = f"state status-{status}" + (" retried" if retries else "")
        classes += " selected" if box.name == selected else ""
        title = f"{name}: {status}" + (f", {retries} retries" if retries else "")
        parts.append(
            f'<g class="{classes}" data-state="{name}" data-status="{status}" data-retries="{retries}" '
            f'tabindex="0" role="button"><title>{title}</title>'
        )
        stroke = ' stroke="#555"'
        if retries:
            stroke = ' stroke="#7a4a00" stroke-width="2.5" stroke-dasharray="4 2"'
        fill = COLOURS[status]
        if box.inner is not None:
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="6" '
                f'fill="#fafafa"{stroke}/>'
                f'<rect class="box" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{MAP_HEADER}" rx="6" '
                f'fill="{fill}"{stroke}/>'
                f'<text x="{x + w / 2:.1f}" y="{y + 17:.1f}" text-anchor="middle">{name} (Map)</text></g>'
            )
            _draw(box.inner, x + MAP_PADDING, y + MAP_HEADER + MAP_PADDING / 2, coloured, selected, parts)
            continue
        rounded = "17" if box.kind in ("Succeed", "Fail") else "5"
        parts.append(
            f'<rect class="box" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
            f'rx="{rounded}" fill="{fill}"{stroke}/>'
            f'<text x="{x + w / 2:.1f}" y="{y + h / 2 + 4:.1f}" text-anchor="middle">{name}</text>'
        )
        if retries:
            parts.append(
                f'<g class="retry-badge"><circle cx="{x + w - 2:.1f}" cy="{y + 2:.1f}" r="9" fill="#7a4a00"/>'
                f'<text x="{x + w - 2:.1f}" y="{y + 6:.1f}" text-anchor="middle" font-size="10">'
                f"↻{retries}</text></g>"
            )
        parts.append("</g>")


def pretty(payload: str) -> str:
    """JSON indented for reading; anything else as it came."""
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except ValueError:
        return payload
