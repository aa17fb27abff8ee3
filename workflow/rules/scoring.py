"""Scores, with :class:`decimal.Decimal`, 4 places, ROUND_HALF_UP (CONTRACT.md, KPI set / score).

* A KPI's five ``levels`` are the results for scores 1..5. Higher-is-better: a result at or
  below level 1 scores 1, at or beyond level 5 scores 5, between levels *i* and *i+1* it scores
  ``i + (result - L_i) / (L_{i+1} - L_i)``. Lower-is-better mirrors it (levels decrease). Each
  KPI score is rounded to 4 places first.
* Composite (overall and per dimension) = Σ(weight × rounded score) / Σ weight, 4 places.
* Penalty = late business days × the per-day amount; final = composite − penalty, or
  ``max(composite − penalty, floor)`` when the cycle sets a floor; the tier is the one with the
  highest ``min`` ≤ final.

Input numbers (floats included) enter arithmetic as ``Decimal(str(x))``, so ``0.1`` is 0.1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from workflow.rules.kpis import Kpi, Number, ScoringRules, is_number

Q = Decimal("0.0001")
ONE = Decimal(1)
FIVE = Decimal(5)
_PRECISION = 40


def q4(value: Decimal) -> Decimal:
    """Round to 4 places, half up."""
    return value.quantize(Q, rounding=ROUND_HALF_UP)


def fmt(value: Decimal | None) -> str | None:
    """A Decimal as the contract prints it (``"3.5000"``), or None."""
    return None if value is None else f"{q4(value):.4f}"


def to_decimal(value: int | float | Decimal) -> Decimal:
    """An input number as an exact Decimal of its shortest text; rejects bool, NaN and inf."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite number: {value}")
        return value
    if not is_number(value):
        raise ValueError(f"not a finite number: {value!r}")
    return Decimal(str(value))


def _levels(kpi: Kpi) -> list[Decimal]:
    levels = [to_decimal(level) for level in kpi.levels]
    if len(levels) != 5:
        raise ValueError(f"KPI {kpi.id}: levels must list 5 results")
    return levels


def band(kpi: Kpi, result: int | float | Decimal) -> tuple[int, int]:
    """Where ``result`` falls: ``(i, i)`` on or beyond the capped level ``i``, ``(i, i+1)`` between.

    ``(1, 1)`` at or below level 1 (the worse side), ``(5, 5)`` at or beyond level 5.
    """
    value = to_decimal(result)
    levels = _levels(kpi)
    sign = ONE if kpi.direction == "higher" else -ONE
    # Measure "goodness" so that both directions increase along the levels.
    good = [sign * level for level in levels]
    x = sign * value
    if x <= good[0]:
        return (1, 1)
    if x >= good[4]:
        return (5, 5)
    for i in range(4):
        if x == good[i]:
            return (i + 1, i + 1)
        if good[i] < x < good[i + 1]:
            return (i + 1, i + 2)
    raise ValueError(f"KPI {kpi.id}: levels are not monotone")  # pragma: no cover


def kpi_score(kpi: Kpi, result: int | float | Decimal) -> Decimal:
    """The KPI's score for ``result``: 1..5, linear between levels, capped, rounded to 4 places."""
    value = to_decimal(result)
    levels = _levels(kpi)
    low, high = band(kpi, result)
    if low == high:
        return q4(Decimal(low))
    lo_level, hi_level = levels[low - 1], levels[high - 1]
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        # (value - lo)/(hi - lo) is the same fraction for either direction.
        raw = Decimal(low) + (value - lo_level) / (hi_level - lo_level)
    return q4(raw)


def _weighted(scored: Sequence[tuple[Kpi, Decimal]]) -> Decimal:
    if not scored:
        raise ValueError("no scored KPIs")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        total_weight = sum((to_decimal(kpi.weight) for kpi, _ in scored), Decimal(0))
        total = sum((to_decimal(kpi.weight) * q4(score) for kpi, score in scored), Decimal(0))
        if total_weight <= 0:
            raise ValueError("KPI weights must sum to more than 0")
        return q4(total / total_weight)


def composite(scored: Sequence[tuple[Kpi, Decimal]]) -> Decimal:
    """Σ(weight × score) / Σ weight over the (rounded) KPI scores, 4 places half up."""
    return _weighted(scored)


def _dimension_key(key: str) -> int:
    return int(key)


def dimension_scores(scored: Sequence[tuple[Kpi, Decimal]]) -> dict[str, Decimal]:
    """The composite formula per dimension; keys ``"1"``, ``"2"``, … in numeric order."""
    groups: dict[str, list[tuple[Kpi, Decimal]]] = {}
    for kpi, score in scored:
        groups.setdefault(str(kpi.dimension), []).append((kpi, score))
    return {key: _weighted(groups[key]) for key in sorted(groups, key=_dimension_key)}


def late_penalty(late_business_days: int | None, per_day: Decimal | None) -> Decimal:
    """``late_business_days × per_day`` to 4 places; ``0.0000`` when either is None."""
    if late_business_days is None or per_day is None:
        return q4(Decimal(0))
    if isinstance(late_business_days, bool) or late_business_days < 0:
        raise ValueError(f"late business days must be >= 0, got {late_business_days!r}")
    return q4(per_day * late_business_days)


def tier_for(final: Decimal | None, tiers: Sequence[tuple[str, Decimal]]) -> str | None:
    """The tier with the highest ``min`` ≤ ``final`` (the first listed on equal mins), else None."""
    if final is None:
        return None
    best: tuple[str, Decimal] | None = None
    for name, minimum in tiers:
        if minimum <= final and (best is None or minimum > best[1]):
            best = (name, minimum)
    return None if best is None else best[0]


def _num(value: Decimal) -> str:
    """A level or result as plain text for explanations (no exponent)."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def explain(kpi: Kpi, result: int | float | Decimal) -> str:
    """One line of arithmetic a person can redo by hand for the KPI's score."""
    value = to_decimal(result)
    levels = _levels(kpi)
    low, high = band(kpi, result)
    score = fmt(kpi_score(kpi, result))
    worse, better = ("below", "above") if kpi.direction == "higher" else ("above", "below")
    if low == high:
        level = levels[low - 1]
        if value == level:
            return f"{kpi.id}: result {_num(value)} is level {low} ({_num(level)}) -> {score}"
        side = worse if low == 1 else better
        return (
            f"{kpi.id}: result {_num(value)} is {side} level {low} ({_num(level)}), "
            f"capped -> {score}"
        )
    a, b = levels[low - 1], levels[high - 1]
    return (
        f"{kpi.id}: result {_num(value)} between level {low} ({_num(a)}) and level {high} "
        f"({_num(b)}): {low} + ({_num(value)} - {_num(a)}) / ({_num(b)} - {_num(a)}) = {score}"
    )


@dataclass(frozen=True)
class ScoredKpi:
    """One KPI line of a score card; ``score`` is None until the KPI has a result."""

    kpi: Kpi
    result: Number | None
    score: Decimal | None
    band: tuple[int, int] | None
    explanation: str | None


@dataclass(frozen=True)
class ScoreCard:
    """Everything ``score`` prints, as Decimals; :meth:`to_json` gives the contract's object."""

    agreement: str
    kpis: tuple[ScoredKpi, ...] | None
    dimensions: dict[str, Decimal | None] | None
    composite: Decimal | None
    late_business_days: int | None
    penalty_per_business_day: Decimal | None
    penalty: Decimal | None
    floor: Decimal | None
    final: Decimal | None
    tier: str | None
    steps: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """The JSON object of CONTRACT.md's ``score`` command, plus explanatory keys."""
        lines: list[dict[str, object]] = []
        for line in self.kpis or ():
            lines.append(
                {
                    "id": line.kpi.id,
                    "dimension": line.kpi.dimension,
                    "weight": line.kpi.weight,
                    "result": line.result,
                    "score": fmt(line.score),
                    "direction": line.kpi.direction,
                    "levels": list(line.kpi.levels),
                    "band": None if line.band is None else list(line.band),
                }
            )
        return {
            "agreement": self.agreement,
            "kpis": lines,
            "dimensions": (
                None
                if self.dimensions is None
                else {key: fmt(value) for key, value in self.dimensions.items()}
            ),
            "composite": fmt(self.composite),
            "late_business_days": self.late_business_days,
            "penalty_per_business_day": fmt(self.penalty_per_business_day),
            "penalty": fmt(self.penalty),
            "floor": fmt(self.floor),
            "final": fmt(self.final),
            "tier": self.tier,
            "steps": list(self.steps),
        }


def _weighted_text(scored: Sequence[tuple[Kpi, Decimal]], result: Decimal) -> str:
    terms = " + ".join(f"{_num(to_decimal(k.weight))} x {fmt(s)}" for k, s in scored)
    total = sum((to_decimal(k.weight) for k, _ in scored), Decimal(0))
    return f"({terms}) / {_num(total)} = {fmt(result)}"


def compute_score_card(
    agreement: str,
    kpis: Sequence[Kpi] | None,
    results: Mapping[str, int | float] | None,
    late_business_days: int | None,
    per_day: Decimal | None,
    rules: ScoringRules,
) -> ScoreCard:
    """Build the :class:`ScoreCard` (see :func:`score_card` for the rules on nulls)."""
    steps: list[str] = []
    if per_day is None:
        penalty: Decimal | None = q4(Decimal(0))
        penalty_step = "penalty: the cycle penalises no milestone -> 0.0000"
    elif late_business_days is None:
        penalty = None
        penalty_step = "penalty: unknown until the penalised milestone arrives or is waived"
    else:
        penalty = late_penalty(late_business_days, per_day)
        penalty_step = (
            f"penalty: {late_business_days} business days x {fmt(per_day)} = {fmt(penalty)}"
        )

    lines: tuple[ScoredKpi, ...] | None = None
    dimensions: dict[str, Decimal | None] | None = None
    total: Decimal | None = None
    if kpis:
        given = results or {}
        built: list[ScoredKpi] = []
        for kpi in kpis:
            result = given.get(kpi.id)
            if result is None:
                built.append(ScoredKpi(kpi, None, None, None, None))
                continue
            explanation = explain(kpi, result)
            steps.append(explanation)
            built.append(
                ScoredKpi(kpi, result, kpi_score(kpi, result), band(kpi, result), explanation)
            )
        lines = tuple(built)
        dimensions = {}
        for key in sorted({str(kpi.dimension) for kpi in kpis}, key=_dimension_key):
            members = [line for line in lines if str(line.kpi.dimension) == key]
            scored = [(line.kpi, line.score) for line in members if line.score is not None]
            if len(scored) == len(members):
                value = composite(scored)
                dimensions[key] = value
                steps.append(f"dimension {key}: {_weighted_text(scored, value)}")
            else:
                dimensions[key] = None
        all_scored = [(line.kpi, line.score) for line in lines if line.score is not None]
        if len(all_scored) == len(lines):
            total = composite(all_scored)
            steps.append(f"composite: {_weighted_text(all_scored, total)}")

    steps.append(penalty_step)
    final: Decimal | None = None
    if total is not None and penalty is not None:
        final = q4(total - penalty)
        text = f"final: {fmt(total)} - {fmt(penalty)} = {fmt(final)}"
        if rules.floor is not None and final < rules.floor:
            final = q4(rules.floor)
            text += f", raised to the floor {fmt(rules.floor)}"
        steps.append(text)
    tier = tier_for(final, rules.tiers)
    if final is not None:
        steps.append(f"tier: {tier if tier is not None else 'none'} (highest min <= final)")
    return ScoreCard(
        agreement=agreement,
        kpis=lines,
        dimensions=dimensions,
        composite=total,
        late_business_days=late_business_days,
        penalty_per_business_day=per_day,
        penalty=penalty,
        floor=rules.floor,
        final=final,
        tier=tier,
        steps=tuple(steps),
    )


def score_card(
    agreement: str,
    kpis: Sequence[Kpi] | None,
    results: Mapping[str, int | float] | None,
    late_business_days: int | None,
    per_day: Decimal | None,
    rules: ScoringRules,
) -> dict[str, object]:
    """The JSON object of CONTRACT.md's ``score`` command; works in any state, null until known.

    Keys: ``agreement``; ``kpis`` (``[]`` without a KPI set, else ``{id, dimension, weight,
    result, score}`` per KPI, weight and result echoed as given, score a 4-place string or null
    until the KPI has a result; extra ``direction``, ``levels``, ``band``); ``dimensions``
    (null without a KPI set, else dimension → score, null until all its KPIs have results);
    ``composite`` (null until every KPI has a result); ``late_business_days`` as given;
    ``penalty``; ``final`` (composite − penalty, raised to ``rules.floor`` when set);
    ``tier``; extra ``penalty_per_business_day``, ``floor`` and ``steps`` (the arithmetic, one
    line per step, so a person can redo it by hand).

    Penalty choice: ``per_day`` is the penalised milestone's amount (None when the cycle
    penalises none: then the penalty is ``"0.0000"``). With ``per_day`` set, the penalty is null
    while ``late_business_days`` is None (the report has not arrived: unknown), else ``days ×
    per_day`` (``"0.0000"`` for 0 days). The caller passes 0 days for a met or waived SAR 12.
    ``final`` and ``tier`` are null until both composite and penalty are known.
    """
    return compute_score_card(
        agreement, kpis, results, late_business_days, per_day, rules
    ).to_json()
