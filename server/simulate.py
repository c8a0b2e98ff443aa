"""`python -m server.cli simulate`: a champion definition file (and optionally a challenger) over a
CSV of applicant profiles, their data taken from the data sources (the sandboxes here). The work
is ``lending_core.products.simulations``, which the staff API shares.

CSV columns: label, id_number, amount_yuan, term_months, repayment_method, is_bank_customer.
"""

from __future__ import annotations

from pathlib import Path

from infra import clock
from lending_core.datasources.gather import DataSources
from lending_core.decisions.simulation import report
from lending_core.products.service import SHIPPED_LPR, read_catalogue_file
from lending_core.products.simulations import compare, read_applicants

SAMPLE = Path(__file__).resolve().parent.parent / "lending_core" / "products" / "samples" / "applicants.csv"


async def run(champion_path: Path, challenger_path: Path | None, csv_path: Path, sources: DataSources, *, bank_code: str) -> str:
    champion = read_catalogue_file(champion_path)
    challenger = read_catalogue_file(challenger_path) if challenger_path else None
    applicants = read_applicants(csv_path.read_text(encoding="utf-8"))
    # No database here: the LPR shipped with the catalogue.
    lpr = {term: bps for term, bps, _ in SHIPPED_LPR}
    summaries, changes = await compare(champion, challenger, applicants, sources, bank_code=bank_code, lpr_bps=lpr, today=clock.business_date())
    return report(summaries, changes)
