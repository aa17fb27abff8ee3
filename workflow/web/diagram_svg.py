"""The declared machine (:mod:`states.machine`) drawn as inline SVG on the server.

No mermaid, no script, no CDN: the states are boxes in one column in their declared order, an
event that moves to the next state is a straight arrow labelled with the event, an event that
jumps further (a short cut) is a curved arrow on the right (its events in a tooltip), and the
events that keep the state are listed beneath. The agreement's current state is filled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from states.machine import EVENTS, FINAL, INITIAL, STATES

BOX_X = 20.0
BOX_W = 240.0
BOX_H = 34.0
PITCH = 70.0  # from one box's top to the next
TOP = 40.0
ARC_START = 26.0  # how far the innermost short-cut arc bulges to the right
ARC_STEP = 11.0
INK = "#3c4043"
ACCENT = "#283593"
FONT = "Sarabun, Loma, Garuda, 'Noto Sans Thai', system-ui, sans-serif"


@dataclass(frozen=True)
class Edges:
    """The machine's transitions, sorted for drawing."""

    steps: dict[tuple[str, str], list[str]]  # to the next state in declared order
    jumps: dict[tuple[str, str], list[str]]  # any other change of state
    kept: list[str]  # events that leave the state unchanged


def machine_edges() -> Edges:
    """The declared transitions, grouped by (from, to) state."""
    steps: dict[tuple[str, str], list[str]] = {}
    jumps: dict[tuple[str, str], list[str]] = {}
    kept: list[str] = []
    for spec in EVENTS.values():
        for transition in spec.transitions:
            for source in transition.sources:
                dest = transition.dest or source
                if dest == source:
                    if spec.name not in kept:
                        kept.append(spec.name)
                    continue
                forward = STATES.index(dest) == STATES.index(source) + 1
                table = steps if forward else jumps
                names = table.setdefault((source, dest), [])
                if spec.name not in names:
                    names.append(spec.name)
    return Edges(steps, jumps, kept)


def _top(state: str) -> float:
    return TOP + STATES.index(state) * PITCH


def _text(x: float, y: float, body: str, **attrs: str) -> str:
    extra = "".join(f" {name.replace('_', '-')}={quoteattr(v)}" for name, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(body)}</text>'


def _box(state: str, label: str, current: bool) -> str:
    y = _top(state)
    fill, ink, weight = (ACCENT, "#fff", "bold") if current else ("#fff", INK, "normal")
    width = "3" if current else "1.2"
    classes = "state current" if current else "state"
    extra = ' aria-current="step"' if current else ""
    inner = ""
    if state == FINAL:  # a final state has a double border
        inner = (
            f'<rect x="{BOX_X + 3:.1f}" y="{y + 3:.1f}" width="{BOX_W - 6:.1f}" '
            f'height="{BOX_H - 6:.1f}" rx="6" fill="none" stroke="{ink}" stroke-width="0.8"/>'
        )
    return (
        f'<g id="state-{state}" class="{classes}" data-state="{state}"{extra}>'
        f"<title>{escape(state)}</title>"
        f'<rect x="{BOX_X:.1f}" y="{y:.1f}" width="{BOX_W:.1f}" height="{BOX_H:.1f}" rx="8" '
        f'fill="{fill}" stroke="{ACCENT}" stroke-width="{width}"/>{inner}'
        + _text(
            BOX_X + BOX_W / 2,
            y + BOX_H / 2 + 5,
            label,
            text_anchor="middle",
            font_size="14",
            font_weight=weight,
            fill=ink,
        )
        + "</g>"
    )


def _step(source: str, dest: str, label: str) -> str:
    x = BOX_X + BOX_W / 2
    y1, y2 = _top(source) + BOX_H, _top(dest) - 2
    return (
        f'<g class="edge step" data-from="{source}" data-to="{dest}">'
        f'<line x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2:.1f}" stroke="{INK}" '
        'stroke-width="1.3" marker-end="url(#arrow)"/>'
        + _text(x + 8, (y1 + y2) / 2 + 4, label, font_size="12", fill=INK)
        + "</g>"
    )


def _jump(source: str, dest: str, label: str, bulge: float) -> str:
    x = BOX_X + BOX_W
    y1 = _top(source) + BOX_H / 2 + 4
    y2 = _top(dest) + BOX_H / 2 - 4
    return (
        f'<path class="edge jump" data-from="{source}" data-to="{dest}" '
        f'd="M {x:.1f} {y1:.1f} C {x + bulge:.1f} {y1:.1f}, {x + bulge:.1f} {y2:.1f}, '
        f'{x + 3:.1f} {y2:.1f}" fill="none" stroke="#80868b" stroke-width="1.1" '
        f'marker-end="url(#arrow-light)"><title>{escape(label)}</title></path>'
    )


def state_diagram_svg(
    state_labels: Mapping[str, str],
    event_labels: Mapping[str, str],
    current: str | None = None,
    title: str = "state diagram",
) -> str:
    """The machine as one ``<svg>`` element; ``current`` (a state) is highlighted.

    ``state_labels`` and ``event_labels`` name states and events in the reader's language
    (missing names fall back to the ids).
    """
    edges = machine_edges()

    def event_text(names: list[str]) -> str:
        return ", ".join(event_labels.get(name, name) for name in names)

    def state_text(state: str) -> str:
        return state_labels.get(state, state)

    parts: list[str] = []
    jumps = sorted(
        edges.jumps.items(),
        key=lambda item: (abs(STATES.index(item[0][1]) - STATES.index(item[0][0])), item[0]),
    )
    for index, ((source, dest), names) in enumerate(jumps):
        label = f"{event_text(names)}: {state_text(source)} → {state_text(dest)}"
        parts.append(_jump(source, dest, label, ARC_START + ARC_STEP * index))
    for (source, dest), names in edges.steps.items():
        parts.append(_step(source, dest, event_text(names)))
    start_x = BOX_X + BOX_W / 2
    parts.append(f'<circle cx="{start_x:.1f}" cy="{TOP - 26:.1f}" r="6" fill="{INK}"/>')
    parts.append(
        f'<line x1="{start_x:.1f}" y1="{TOP - 20:.1f}" x2="{start_x:.1f}" y2="{TOP - 2:.1f}" '
        f'stroke="{INK}" stroke-width="1.3" marker-end="url(#arrow)"/>'
    )
    for state in STATES:
        parts.append(_box(state, state_text(state), state == current))
    width = BOX_X + BOX_W + ARC_START + ARC_STEP * max(len(jumps) - 1, 0) + 24
    bottom = _top(STATES[-1]) + BOX_H + 20
    if edges.kept:
        kept = ", ".join(event_labels.get(name, name) for name in edges.kept)
        parts.append(_text(BOX_X, bottom + 4, "↻ " + kept, font_size="12", fill=INK))
        bottom += 20
    height = bottom + 8
    defs = (
        "<defs>"
        '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{INK}"/>'
        "</marker>"
        '<marker id="arrow-light" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#80868b"/></marker>'
        "</defs>"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="machine" role="img" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
        f"aria-label={quoteattr(title)} font-family={quoteattr(FONT)} "
        f'data-initial="{INITIAL}" data-current="{current or ""}">'
        f"<title>{escape(title)}</title>{defs}" + "".join(parts) + "</svg>"
    )
