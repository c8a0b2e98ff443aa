"""Champion/challenger simulation over applicant profiles, for the CLI and the staff API alike.

The profiles are CSV (``label,id_number,amount_yuan,term_months,repayment_method,is_bank_customer``).
Each applicant's data is asked of the data sources the two definitions need, the way an
application asks them, and the pure ``decisions.simulation`` decides both sides. Nothing is
saved but an audit row: a simulation asks the sources about real ID numbers, so who ran it over
how many people is on record.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from datetime import date

from infra import audit, clock
from infra.actors import Actor
from infra.identity_numbers import InvalidIdNumber, age_on, gender_of, validate_id_number
from lending_core import access
from lending_core.datasources.gather import DataSources, gather
from lending_core.decisions.engine import LoanRequest, Evidence
from lending_core.decisions.simulation import Case, Change, Summary, simulate
from lending_core.org.models import Bank
from lending_core.products import service
from lending_core.products.definition import LPR_TERMS, REPAYMENT_METHODS, ProductDefinition
from lending_core.products.errors import ApplicantsRefused, ProductNotFound, TooManyApplicants
from lending_core.products.models import Product, ProductVersion

COLUMNS = ("label", "id_number", "amount_yuan", "term_months", "repayment_method", "is_bank_customer")
REQUIRED_COLUMNS = ("id_number", "amount_yuan", "term_months", "repayment_method")
# Each applicant costs a call to every data source the products read: a simulation is a sample,
# not a book.
MAX_APPLICANTS = 2000
# Problems reported at once for a bad file: enough to fix a column, not a wall of text.
MAX_PROBLEMS = 20
# Applicants whose data is being asked at the same time, so a large file does not flood the sources.
CONCURRENCY = 200
YES, NO = ("true", "1", "yes", "y", "是"), ("false", "0", "no", "n", "否", "")


@dataclass(frozen=True)
class Applicant:
    label: str
    id_number: str
    request: LoanRequest
    is_bank_customer: bool


@dataclass(frozen=True)
class Simulation:
    product: Product
    bank: Bank
    champion_version: int
    challenger_version: int | None  # None: no challenger, or a definition posted for the occasion
    challenger_posted: bool
    applicants: int
    summaries: list[Summary]
    changes: list[Change]


def _whole(value: str, column: str, low: int, high: int) -> tuple[int | None, str | None]:
    text = value.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        return None, f"{column} must be a whole number from {low} to {high}"
    return int(text), None


def _applicant(row: dict, line: int) -> tuple[Applicant | None, list[str]]:
    if None in row:
        return None, [f"has more fields than the header ({len(row) - 1 + len(row[None])} > {len(row) - 1})"]
    if any(value is None for value in row.values()):
        return None, ["has fewer fields than the header"]
    problems = []
    id_number = row["id_number"].strip()
    try:
        id_number = validate_id_number(id_number)
    except InvalidIdNumber:
        problems.append("id_number is not a valid resident ID number")  # the value itself is personal data: not echoed
    amount, problem = _whole(row["amount_yuan"], "amount_yuan", 1, 100_000_000)
    problems += [problem] if problem else []
    term, problem = _whole(row["term_months"], "term_months", 1, 360)
    problems += [problem] if problem else []
    method = row["repayment_method"].strip()
    if method not in REPAYMENT_METHODS:
        problems.append(f"repayment_method must be one of {', '.join(REPAYMENT_METHODS)}")
    customer = (row.get("is_bank_customer") or "").strip().lower()
    if customer not in YES + NO:
        problems.append("is_bank_customer must be true or false")
    if problems:
        return None, problems
    label = (row.get("label") or "").strip() or f"line {line}"
    return Applicant(label, id_number, LoanRequest(amount, term, method), customer in YES), []


def read_applicants(text: str, *, limit: int = MAX_APPLICANTS) -> list[Applicant]:
    """The applicants of a CSV file, or a refusal naming each bad line (1 is the header)."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    header = [name.strip() for name in (reader.fieldnames or [])]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        problem = {"line": 1, "problem": f"the header lacks {', '.join(missing)}; columns: {','.join(COLUMNS)}"}
        raise ApplicantsRefused(f"line 1: {problem['problem']}", details={"problems": [problem]})
    reader.fieldnames = header
    applicants: list[Applicant] = []
    problems: list[dict] = []
    rows = 0
    try:
        for row in reader:
            rows += 1
            if rows > limit:
                continue  # counted, so the refusal can say how many there were
            applicant, wrong = _applicant(row, reader.line_num)
            if applicant is not None:
                applicants.append(applicant)
            problems += [{"line": reader.line_num, "problem": p} for p in wrong]
    except csv.Error as exc:
        problems.append({"line": reader.line_num, "problem": f"not valid CSV: {exc}"})
    if rows > limit:
        raise TooManyApplicants(f"{rows} applicants: a simulation takes at most {limit}", details={"rows": rows, "max_rows": limit})
    if problems:
        first = problems[0]
        raise ApplicantsRefused(f"line {first['line']}: {first['problem']}", details={"problems": problems[:MAX_PROBLEMS], "count": len(problems)})
    if not applicants:
        raise ApplicantsRefused("the file has a header but no applicants", details={"problems": [{"line": 2, "problem": "no applicants"}]})
    return applicants


async def cases_for(applicants: list[Applicant], sources: DataSources, needed: tuple[str, ...], *, bank_code: str, today: date) -> list[Case]:
    """Each applicant with their data from the sources, as the engine sees an application."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(applicant: Applicant) -> Case:
        async with gate:
            records, unavailable = await gather(sources, needed, id_number=applicant.id_number, person_name=applicant.label, bank_code=bank_code)
        evidence = Evidence(
            applicant={"age": age_on(applicant.id_number, today), "gender": gender_of(applicant.id_number), "is_bank_customer": applicant.is_bank_customer},
            sources=records,
            unavailable=unavailable,
        )
        return Case(applicant.label, applicant.request, evidence, applicant.id_number)

    return list(await asyncio.gather(*(one(a) for a in applicants)))


async def compare(
    champion: ProductDefinition,
    challenger: ProductDefinition | None,
    applicants: list[Applicant],
    sources: DataSources,
    *,
    bank_code: str,
    lpr_bps: dict[str, int],
    today: date,
) -> tuple[list[Summary], list[Change]]:
    needed = tuple(sorted(set(champion.data_sources) | set(challenger.data_sources if challenger else ())))
    cases = await cases_for(applicants, sources, needed, bank_code=bank_code, today=today)
    return simulate(cases, champion, challenger, lpr_bps=lpr_bps)


async def _bank_for(actor: Actor, product: Product, bank_id: int | None) -> Bank:
    """The bank whose own data (payroll, deposits, local records) the applicants are looked up in:
    a bank's own product's bank; else the one asked for, the member's own, or the first member bank."""
    if product.owner_bank_id is not None:
        return await Bank.get(id=product.owner_bank_id)
    if bank_id is not None:
        access.check_bank_visible(actor, bank_id)
        bank = await Bank.filter(id=bank_id).first()
        if bank is None:
            raise ProductNotFound("no such bank")
        return bank
    if actor.bank_id is not None:
        return await Bank.get(id=actor.bank_id)
    return await Bank.all().order_by("id").first()


async def simulate_versions(
    actor: Actor,
    sources: DataSources,
    code: str,
    *,
    csv_text: str,
    challenger_version: int | None = None,
    challenger_definition: dict | None = None,
    bank_id: int | None = None,
) -> Simulation:
    """The published version (champion) against another version or a posted definition
    (challenger), over the applicants of ``csv_text``."""
    product = await service.managed_product(actor, code)
    if product.published_version is None:
        raise ProductNotFound("this product has no published version to simulate")
    champion = await service.version_definition(product.id, product.published_version, code=product.code)
    challenger = None
    if challenger_definition is not None:
        challenger = service.validate(challenger_definition, source="challenger")
    elif challenger_version is not None:
        if not await ProductVersion.filter(product_id=product.id, version=challenger_version).exists():
            raise ProductNotFound("no such version of this product")
        challenger = await service.version_definition(product.id, challenger_version, code=product.code)
    applicants = read_applicants(csv_text)
    bank = await _bank_for(actor, product, bank_id)
    today = clock.business_date()
    lpr = {term: await service.lpr_bps(term, today) for term in LPR_TERMS}
    summaries, changes = await compare(champion, challenger, applicants, sources, bank_code=bank.code, lpr_bps=lpr, today=today)
    await audit.record(
        actor,
        "product.simulate",
        "product",
        product.id,
        bank_id=product.owner_bank_id,
        after={"applicants": len(applicants), "data_of_bank": bank.code, "challenger": challenger_version or ("posted" if challenger_definition else None)},
    )
    return Simulation(
        product, bank, product.published_version, challenger_version if challenger_definition is None else None,
        challenger_definition is not None, len(applicants), summaries, changes,
    )
