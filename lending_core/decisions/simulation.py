"""Champion/challenger simulation: run one definition, or two side by side, over the same
applicants and report approval rates, limit and rate distributions and whose outcome changed.
Pure, like the engine: the caller supplies the evidence for each applicant."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Mapping

from infra.money import yuan_text
from lending_core.decisions.engine import APPROVED, MANUAL_REVIEW, REJECTED, Decision, Evidence, LoanRequest, Params, decide
from lending_core.products.definition import ProductDefinition


@dataclass(frozen=True)
class Case:
    label: str
    request: LoanRequest
    evidence: Evidence
    id_number: str = ""


@dataclass(frozen=True)
class Summary:
    name: str
    count: int
    approved: int
    manual_review: int
    rejected: int
    limit_quartiles_fen: tuple[int, int, int]
    rate_quartiles_bps: tuple[int, int, int]

    def rate(self, outcome_count: int) -> str:
        return f"{outcome_count / self.count:.1%}" if self.count else "-"


@dataclass(frozen=True)
class Change:
    label: str
    champion: Decision
    challenger: Decision
    id_number: str = ""


def params_of(definition: ProductDefinition) -> Params:
    return Params(definition.amount_yuan.max, definition.pricing.floor_bps, 0, definition.restrict_list_cap_yuan)


def _quartiles(values: list[int]) -> tuple[int, int, int]:
    if not values:
        return (0, 0, 0)
    if len(values) == 1:
        return (values[0],) * 3
    q = statistics.quantiles(values, n=4, method="inclusive")
    return (int(q[0]), int(q[1]), int(q[2]))


def _summary(name: str, decisions: list[Decision]) -> Summary:
    granted = [d for d in decisions if d.outcome != REJECTED]
    return Summary(
        name,
        len(decisions),
        sum(d.outcome == APPROVED for d in decisions),
        sum(d.outcome == MANUAL_REVIEW for d in decisions),
        sum(d.outcome == REJECTED for d in decisions),
        _quartiles(sorted(d.limit_fen for d in granted)),
        _quartiles(sorted(d.rate_bps for d in granted)),
    )


def _decisions(definition: ProductDefinition, cases: list[Case], lpr_bps: Mapping[str, int]) -> list[Decision]:
    # Each side is priced on its own LPR term: a challenger may move a product to the 5-year LPR.
    lpr = lpr_bps[definition.pricing.lpr_term]
    return [decide(definition, params_of(definition), c.request, c.evidence, lpr_bps=lpr) for c in cases]


def simulate(
    cases: list[Case], champion: ProductDefinition, challenger: ProductDefinition | None, *, lpr_bps: Mapping[str, int]
) -> tuple[list[Summary], list[Change]]:
    """``lpr_bps``: the LPR by term ("1y", "5y")."""
    first = _decisions(champion, cases, lpr_bps)
    summaries = [_summary(f"champion {champion.code}", first)]
    changes: list[Change] = []
    if challenger is not None:
        second = _decisions(challenger, cases, lpr_bps)
        summaries.append(_summary(f"challenger {challenger.code}", second))
        changes = [
            Change(case.label, a, b, case.id_number)
            for case, a, b in zip(cases, first, second)
            if (a.outcome, a.limit_fen, a.rate_bps) != (b.outcome, b.limit_fen, b.rate_bps)
        ]
    return summaries, changes


def report(summaries: list[Summary], changes: list[Change], *, show: int = 20) -> str:
    lines = ["| definition | applicants | approved | manual review | rejected | limit p25/p50/p75 (yuan) | rate p25/p50/p75 (bps) |", "| --- | ---: | ---: | ---: | ---: | --- | --- |"]
    for s in summaries:
        limits = " / ".join(yuan_text(v) for v in s.limit_quartiles_fen)
        rates = " / ".join(str(v) for v in s.rate_quartiles_bps)
        lines.append(f"| {s.name} | {s.count} | {s.rate(s.approved)} | {s.rate(s.manual_review)} | {s.rate(s.rejected)} | {limits} | {rates} |")
    if len(summaries) > 1:
        lines.append(f"\n{len(changes)} applicants' outcome, limit or rate changed" + (f" (first {show}):" if len(changes) > show else ":"))
        for change in changes[:show]:
            a, b = change.champion, change.challenger
            lines.append(
                f"- {change.label}: {a.outcome} {yuan_text(a.limit_fen)} @ {a.rate_bps} bps → {b.outcome} {yuan_text(b.limit_fen)} @ {b.rate_bps} bps"
            )
    return "\n".join(lines)
