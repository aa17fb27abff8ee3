"""KPI sets: parsing and checking the ``{"kpis": [...]}`` documents of CONTRACT.md ("KPI set").

A KPI set arrives as event data (``propose_kpis``, ``agree``, ``request_change``). It is checked
against the cycle's ``[scoring]`` rules and every problem is reported at once, each naming the
KPI it is about. Numbers are kept exactly as given (``int`` or ``float``) so that ``score`` can
echo them; arithmetic on them goes through ``Decimal(str(x))`` (see :mod:`workflow.rules.scoring`).
User JSON is read by :mod:`workflow.rules.jsoninput`, which refuses a number its float cannot hold
exactly; the checks here also refuse precision the scoring cannot keep: more than
:data:`MAX_PLACES` decimal places, or a magnitude of :data:`MAX_MAGNITUDE` or more.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from workflow.rules.errors import quoted

DIRECTIONS = ("higher", "lower")
LEVEL_COUNT = 5
TOTAL_WEIGHT = Decimal(100)
DEFAULT_DIMENSIONS = (1, 2, 3, 4)
MAX_PLACES = 6
MAX_MAGNITUDE = Decimal(10) ** 12

REQUIRED_KEYS = ("id", "dimension", "name_th", "unit", "direction", "weight", "levels")
OPTIONAL_KEYS = ("baseline", "definition")
KNOWN_KEYS = frozenset(REQUIRED_KEYS + OPTIONAL_KEYS)

Number = int | float


@dataclass(frozen=True)
class ScoringRules:
    """The cycle file's ``[scoring]`` table, already checked by the config loader.

    ``dimension_weights`` maps dimension numbers as strings (``"1"``) to their weight, or is
    ``None`` when the cycle sets none. ``tiers`` are ``(name, min)`` pairs in any order.
    """

    dimension_weights: dict[str, Decimal] | None
    approved_kpis: frozenset[str]
    tiers: tuple[tuple[str, Decimal], ...]
    floor: Decimal | None


@dataclass(frozen=True)
class Kpi:
    """One KPI of an agreement; ``weight``, ``baseline`` and ``levels`` are the numbers as given."""

    id: str
    dimension: int
    name_th: str
    unit: str
    direction: str
    weight: Number
    baseline: Number | None
    levels: tuple[Number, ...]
    definition: str | None = None


class KpiSetError(ValueError):
    """A KPI set (or a results object) with problems; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("; ".join(self.problems))


def is_number(value: object) -> bool:
    """True for a finite JSON number: an ``int`` or ``float`` that is not a ``bool``, NaN or inf."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, float) or math.isfinite(value)


def _show(value: object) -> str:
    """A value as short JSON text for messages (``true``, ``"x"``, ``NaN``; long ones cut)."""
    return quoted(value, as_json=True)


def precision_problem(value: object) -> str | None:
    """Why a finite number cannot be scored exactly, or None when it can.

    Scores are computed with ``Decimal`` on the number's shortest text; more than
    :data:`MAX_PLACES` decimal places or a magnitude of :data:`MAX_MAGNITUDE` or more would be
    rounded on the way, so such numbers are refused rather than silently changed.
    """
    exact = Decimal(str(value))
    if abs(exact) >= MAX_MAGNITUDE:
        return "is too large (the magnitude must stay under 10^12)"
    exponent = exact.as_tuple().exponent  # str() of a float is its shortest text
    if isinstance(exponent, int) and exponent < -MAX_PLACES:
        return f"has more than {MAX_PLACES} decimal places"
    return None


def _plain(value: Decimal) -> str:
    """A Decimal without exponent or needless trailing zeros (``95``, ``12.5``)."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _dimension_sort_key(key: str) -> tuple[int, str]:
    return (int(key), key) if key.isdigit() else (1 << 30, key)


def _label(index: int, item: object) -> str:
    """How a message names the KPI at ``index``: its id when it has one, else its position."""
    if isinstance(item, Mapping):
        kpi_id = item.get("id")
        if isinstance(kpi_id, str) and kpi_id.strip():
            return f"KPI {_show(kpi_id)}"
    return f"KPI #{index + 1}"


def _check_levels(label: str, levels: object, direction: object, problems: list[str]) -> bool:
    """Check ``levels``: five finite numbers, monotone in the KPI's direction."""
    if not isinstance(levels, list | tuple):
        problems.append(f"{label}: levels must be a list of {LEVEL_COUNT} numbers")
        return False
    if len(levels) != LEVEL_COUNT:
        problems.append(
            f"{label}: levels must list exactly {LEVEL_COUNT} numbers (scores 1..5), "
            f"got {len(levels)}"
        )
        return False
    bad = [i + 1 for i, level in enumerate(levels) if not is_number(level)]
    if bad:
        which = ", ".join(str(i) for i in bad)
        problems.append(f"{label}: levels must be finite numbers (level {which} is not)")
        return False
    for position, level in enumerate(levels, start=1):
        if (why := precision_problem(level)) is not None:
            problems.append(f"{label}: level {position} {_show(level)} {why}")
            return False
    values = [Decimal(str(level)) for level in levels]
    pairs = list(itertools.pairwise(values))
    if direction == "higher" and not all(a < b for a, b in pairs):
        problems.append(
            f"{label}: levels must be strictly increasing for direction higher, "
            f"got {_show(list(levels))}"
        )
        return False
    if direction == "lower" and not all(a > b for a, b in pairs):
        problems.append(
            f"{label}: levels must be strictly decreasing for direction lower, "
            f"got {_show(list(levels))}"
        )
        return False
    return direction in DIRECTIONS


def _check_kpi(
    index: int, item: object, rules: ScoringRules, problems: list[str]
) -> tuple[Kpi | None, Decimal | None, int | None]:
    """Check one KPI object; return it (or None), its weight and dimension when those are valid."""
    label = _label(index, item)
    if not isinstance(item, Mapping):
        problems.append(f"{label}: must be an object, got {_show(item)}")
        return None, None, None
    start = len(problems)
    for key in item:
        if key not in KNOWN_KEYS:
            problems.append(f"{label}: unknown key {_show(key)}")
    for key in REQUIRED_KEYS:
        if key not in item:
            problems.append(f"{label}: missing {key}")

    kpi_id = item.get("id")
    if "id" in item and not (isinstance(kpi_id, str) and kpi_id.strip()):
        problems.append(f"{label}: id must be a non-empty string, got {_show(kpi_id)}")

    dimension = item.get("dimension")
    good_dimension: int | None = None
    if "dimension" in item:
        if isinstance(dimension, bool) or not isinstance(dimension, int):
            problems.append(f"{label}: dimension must be an integer, got {_show(dimension)}")
        elif rules.dimension_weights is not None:
            if str(dimension) in rules.dimension_weights:
                good_dimension = dimension
            else:
                allowed = ", ".join(sorted(rules.dimension_weights, key=_dimension_sort_key))
                problems.append(
                    f"{label}: dimension {dimension} is not one of the cycle's dimensions "
                    f"({allowed})"
                )
        elif dimension in DEFAULT_DIMENSIONS:
            good_dimension = dimension
        else:
            problems.append(f"{label}: dimension must be 1, 2, 3 or 4, got {dimension}")

    name_th = item.get("name_th")
    if "name_th" in item and not (isinstance(name_th, str) and name_th.strip()):
        problems.append(f"{label}: name_th must be a non-empty string, got {_show(name_th)}")

    unit = item.get("unit")
    if "unit" in item and not isinstance(unit, str):
        problems.append(f"{label}: unit must be a string, got {_show(unit)}")

    direction = item.get("direction")
    if "direction" in item and direction not in DIRECTIONS:
        problems.append(f"{label}: direction must be higher or lower, got {_show(direction)}")

    weight = item.get("weight")
    good_weight: Decimal | None = None
    if "weight" in item:
        if not (is_number(weight) and Decimal(str(weight)) > 0):
            problems.append(f"{label}: weight must be a positive number, got {_show(weight)}")
        elif (why := precision_problem(weight)) is not None:
            problems.append(f"{label}: weight {_show(weight)} {why}")
        else:
            good_weight = Decimal(str(weight))

    baseline = item.get("baseline")
    if baseline is not None and not is_number(baseline):
        problems.append(f"{label}: baseline must be a number or null, got {_show(baseline)}")
    elif baseline is not None and (why := precision_problem(baseline)) is not None:
        problems.append(f"{label}: baseline {_show(baseline)} {why}")

    definition = item.get("definition")
    if definition is not None and not isinstance(definition, str):
        problems.append(f"{label}: definition must be a string or null, got {_show(definition)}")

    levels = item.get("levels")
    if "levels" in item:
        _check_levels(label, levels, direction, problems)

    if len(problems) > start:
        return None, good_weight, good_dimension
    assert isinstance(kpi_id, str) and isinstance(dimension, int)
    assert isinstance(name_th, str) and isinstance(unit, str) and isinstance(direction, str)
    assert isinstance(weight, int | float) and isinstance(levels, list | tuple)
    assert baseline is None or isinstance(baseline, int | float)
    kpi = Kpi(
        id=kpi_id,
        dimension=dimension,
        name_th=name_th,
        unit=unit,
        direction=direction,
        weight=weight,
        baseline=baseline,
        levels=tuple(levels),
        definition=definition,
    )
    return kpi, good_weight, good_dimension


def parse_kpi_set(data: object, rules: ScoringRules) -> tuple[Kpi, ...]:
    """Check a parsed ``{"kpis": [...]}`` document against ``rules`` and return its KPIs.

    Every problem is collected and raised together as :class:`KpiSetError`: the shape of each
    KPI (unknown or missing keys, types, NaN/inf, five strictly monotone levels, a positive
    weight, a dimension of the cycle), unique ids, weights summing to 100 and, when the cycle
    sets ``dimension_weights``, each dimension's KPI weights summing to that dimension's weight
    (a dimension weighted 0 may have no KPIs). Other top-level keys are ignored, so the data of
    ``request_change`` (``reason``, ``explanation``, ``kpis``) can be passed as it is.
    """
    if not isinstance(data, Mapping):
        raise KpiSetError([f"a KPI set must be an object with a kpis list, got {_show(data)}"])
    items = data.get("kpis")
    if not isinstance(items, list | tuple) or not items:
        raise KpiSetError([f"kpis must be a non-empty list, got {_show(items)}"])

    problems: list[str] = []
    kpis: list[Kpi] = []
    weights: list[tuple[Decimal | None, int | None]] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            kpi_id = str(item["id"])
            if kpi_id in seen:
                problems.append(
                    f"KPI {_show(kpi_id)}: duplicate id (KPIs #{seen[kpi_id] + 1} and #{index + 1})"
                )
            else:
                seen[kpi_id] = index
        kpi, weight, dimension = _check_kpi(index, item, rules, problems)
        if kpi is not None:
            kpis.append(kpi)
        weights.append((weight, dimension))

    if all(weight is not None for weight, _ in weights):
        total = sum((weight for weight, _ in weights if weight is not None), Decimal(0))
        if total != TOTAL_WEIGHT:
            problems.append(f"KPI weights sum to {_plain(total)}, not 100")
    if rules.dimension_weights is not None and all(
        weight is not None and dimension is not None for weight, dimension in weights
    ):
        for key in sorted(rules.dimension_weights, key=_dimension_sort_key):
            expected = rules.dimension_weights[key]
            got = sum(
                (w for w, d in weights if w is not None and str(d) == key),
                Decimal(0),
            )
            if got != expected:
                problems.append(
                    f"dimension {key}: KPI weights sum to {_plain(got)}, "
                    f"but the cycle weights dimension {key} at {_plain(expected)}"
                )
    if problems:
        raise KpiSetError(problems)
    return tuple(kpis)


def kpis_to_json(kpis: Sequence[Kpi]) -> list[dict[str, object]]:
    """The KPIs as JSON objects, the inverse of :func:`parse_kpi_set` (numbers as given).

    ``definition`` is included only when set.
    """
    out: list[dict[str, object]] = []
    for kpi in kpis:
        item: dict[str, object] = {
            "id": kpi.id,
            "dimension": kpi.dimension,
            "name_th": kpi.name_th,
            "unit": kpi.unit,
            "direction": kpi.direction,
            "weight": kpi.weight,
            "baseline": kpi.baseline,
            "levels": list(kpi.levels),
        }
        if kpi.definition is not None:
            item["definition"] = kpi.definition
        out.append(item)
    return out


def off_list(kpis: Sequence[Kpi], rules: ScoringRules) -> list[str]:
    """Ids of the KPIs not on the cycle's approved list, in the set's order.

    Empty means ``agree`` may go straight from ``proposed``; otherwise ``start_negotiation``.
    """
    return [kpi.id for kpi in kpis if kpi.id not in rules.approved_kpis]


def parse_results(
    data: object, kpis: Sequence[Kpi], *, require_all: bool = True
) -> dict[str, Number]:
    """Check the data of ``evaluate`` (``{"results": {KPI_ID: number}}``) against the KPI set.

    Every result must be a finite number for a KPI of the set; with ``require_all`` every KPI
    must have one. Returns the results as given (in the KPI set's order); raises
    :class:`KpiSetError` with every problem otherwise. Other top-level keys are ignored.
    """
    if not isinstance(data, Mapping):
        raise KpiSetError([f"evaluation data must be an object with results, got {_show(data)}"])
    results = data.get("results")
    if not isinstance(results, Mapping):
        raise KpiSetError([f"results must be an object of KPI id to number, got {_show(results)}"])
    ids = [kpi.id for kpi in kpis]
    problems: list[str] = []
    for key, value in results.items():
        if key not in ids:
            problems.append(f"results: {_show(key)} is not a KPI of this agreement")
        elif not is_number(value):
            problems.append(f"KPI {_show(key)}: result must be a finite number, got {_show(value)}")
        elif (why := precision_problem(value)) is not None:
            problems.append(f"KPI {_show(key)}: result {_show(value)} {why}")
    if require_all:
        missing = [kpi_id for kpi_id in ids if kpi_id not in results]
        if missing:
            problems.append("results missing for KPI " + ", ".join(_show(m) for m in missing))
    if problems:
        raise KpiSetError(problems)
    return {kpi_id: results[kpi_id] for kpi_id in ids if kpi_id in results}
