"""`python -m server.cli simulate`: a champion definition (and optionally a challenger) over a
CSV of synthetic applicant profiles, their data taken from the data sources (the sandboxes here).

CSV columns: label, id_number, amount_yuan, term_months, repayment_method, is_bank_customer.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

from infra import clock
from infra.identity_numbers import age_on, gender_of
from lending_core.datasources.gather import DataSources, gather
from lending_core.decisions.engine import Evidence, LoanRequest
from lending_core.decisions.simulation import Case, report, simulate
from lending_core.products.definition import ProductDefinition
from lending_core.products.service import SHIPPED_LPR, read_catalogue_file

SAMPLE = Path(__file__).resolve().parent.parent / "lending_core" / "products" / "samples" / "applicants.csv"


async def _case(row: dict, sources: DataSources, needed: tuple[str, ...], bank_code: str) -> Case:
    id_number = row["id_number"]
    records, unavailable = await gather(sources, needed, id_number=id_number, person_name=row.get("label", ""), bank_code=bank_code)
    today = clock.business_date()
    evidence = Evidence(
        applicant={
            "age": age_on(id_number, today),
            "gender": gender_of(id_number),
            "is_bank_customer": row.get("is_bank_customer", "").lower() == "true",
        },
        sources=records,
        unavailable=unavailable,
    )
    request = LoanRequest(int(row["amount_yuan"]), int(row["term_months"]), row["repayment_method"])
    return Case(row.get("label") or id_number[-4:], request, evidence)


async def run(champion_path: Path, challenger_path: Path | None, csv_path: Path, sources: DataSources, *, bank_code: str) -> str:
    champion: ProductDefinition = read_catalogue_file(champion_path)
    challenger = read_catalogue_file(challenger_path) if challenger_path else None
    needed = tuple(sorted(set(champion.data_sources) | set(challenger.data_sources if challenger else ())))
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    cases = await asyncio.gather(*(_case(row, sources, needed, bank_code) for row in rows))
    lpr = dict((term, bps) for term, bps, _ in SHIPPED_LPR)[champion.pricing.lpr_term]
    summaries, changes = simulate(list(cases), champion, challenger, lpr_bps=lpr)
    return report(summaries, changes)
