"""The data-source sandboxes: each persona's figures, determinism, money as int fen, the
unavailable and slow sources, the demo applicants, and the contract with ``ports``."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import typing
from datetime import date

import pytest

from infra.identity_numbers import age_on, make_test_id_number, validate_id_number, validate_phone
from integrations import data_sandbox as sandbox
from lending_core.datasources import ports

CONTRACTS = [
    (sandbox.SandboxCreditBureau, ports.CreditBureau, "report"),
    (sandbox.SandboxTaxBureau, ports.TaxBureau, "record"),
    (sandbox.SandboxCourts, ports.Courts, "record"),
    (sandbox.SandboxSocialSecurity, ports.SocialSecurity, "record"),
    (sandbox.SandboxProvidentFund, ports.ProvidentFund, "record"),
    (sandbox.SandboxPropertyRegistry, ports.PropertyRegistry, "record"),
    (sandbox.SandboxBankData, ports.BankData, "record"),
    (sandbox.SandboxLocalData, ports.LocalData, "record"),
]
BIRTHS = (date(1975, 4, 3), date(1988, 9, 21), date(1996, 1, 30))


def id_of(sequence: int, birth: date = BIRTHS[1]) -> str:
    return make_test_id_number("320102", birth, sequence)


def ids_of(label: str) -> list[str]:
    """A few ID numbers of the persona: its first, middle and last sequence, with different births."""
    persona = next(p for p in sandbox.PERSONAS if p.label == label)
    sequences = (persona.first, (persona.first + persona.last) // 2, persona.last)
    return [id_of(s, b) for s in sequences for b in BIRTHS[:2]]


async def ask(sandbox_class, id_number: str, *, name: str = "王建国", bank_code: str = "B001"):
    source = sandbox_class()
    if sandbox_class in (sandbox.SandboxBankData, sandbox.SandboxLocalData):
        return await source.record(bank_code, id_number)
    if sandbox_class is sandbox.SandboxCreditBureau:
        return await source.report(id_number, name)
    if sandbox_class is sandbox.SandboxCourts:
        return await source.record(id_number, name)
    return await source.record(id_number)


async def everything(id_number: str) -> dict[str, object]:
    return {cls.source: await ask(cls, id_number) for cls, _, _ in CONTRACTS}


def amounts(answers: dict[str, object]) -> dict[str, int]:
    return {f"{source}.{field.name}": getattr(record, field.name)
            for source, record in answers.items() for field in dataclasses.fields(record) if field.name.endswith("_fen")}


def yuan(amount: int) -> int:
    return amount * 100


async def test_clean_salaried_has_long_contributions_payroll_and_a_clean_report():
    for id_number in ids_of("clean_salaried"):
        a = await everything(id_number)
        assert a["social_security"].contribution_months >= 60 and a["provident_fund"].contribution_months >= 60
        assert a["social_security"].employer_kind in ("public_sector", "soe")
        assert yuan(6_000) <= a["bank"].payroll_monthly_fen <= yuan(20_000) and a["bank"].payroll_months > 0
        credit = a["credit_bureau"]
        assert credit.has_record and credit.overdue_count_24m == 0 and 1 <= credit.inquiries_3m <= 3


async def test_thin_file_has_no_credit_record_and_few_months():
    for id_number in ids_of("thin_file"):
        a = await everything(id_number)
        assert not a["credit_bureau"].has_record and a["social_security"].contribution_months < 12


async def test_sole_proprietor_has_a_good_tax_history():
    for id_number in ids_of("sole_proprietor"):
        tax = await ask(sandbox.SandboxTaxBureau, id_number)
        assert tax.taxpayer_kind == "sole_proprietor" and tax.credit_grade in ("A", "B") and tax.months_paid_24m == 24
        assert yuan(1_000_000) <= tax.annual_revenue_fen <= yuan(10_000_000)
        assert len(tax.unified_social_credit_code) == 18 and tax.unified_social_credit_code[:2] == "92"


async def test_court_personas_have_enforcements_and_only_450_to_499_are_dishonest():
    for label in ("court_enforcement", "dishonest_debtor"):
        for id_number in ids_of(label):
            court = await ask(sandbox.SandboxCourts, id_number)
            assert court.active_enforcements > 0 and court.enforcement_amount_fen > 0
            assert court.dishonest_debtor == (label == "dishonest_debtor")
    for sequence in (*range(0, 450, 7), *range(500, 990, 7)):
        assert not (await ask(sandbox.SandboxCourts, id_of(sequence))).dishonest_debtor


async def test_recent_overdues_show_in_the_credit_report():
    for id_number in ids_of("recent_overdues"):
        credit = await ask(sandbox.SandboxCreditBureau, id_number)
        assert credit.overdue_count_24m >= 3 and credit.current_overdue_fen > 0 and credit.inquiries_3m >= 4
        assert 1 <= credit.max_overdue_months_24m <= credit.overdue_count_24m


async def test_deposit_holder_has_large_time_deposits_and_modest_income():
    for id_number in ids_of("deposit_holder"):
        a = await everything(id_number)
        assert a["bank"].time_deposit_fen >= yuan(500_000) and a["bank"].deposit_avg_6m_fen >= a["bank"].time_deposit_fen
        assert a["social_security"].monthly_base_fen <= yuan(6_000)


async def test_home_owner_has_homes_and_a_mortgage_in_good_standing():
    for id_number in ids_of("home_owner"):
        a = await everything(id_number)
        assert a["property"].count in (1, 2) and a["property"].mortgaged_count == 1 and a["property"].largest_property_id
        assert a["bank"].mortgage_in_good_standing and a["bank"].existing_loans_fen > 0
        assert a["credit_bureau"].outstanding_debt_fen >= a["bank"].existing_loans_fen


@pytest.mark.parametrize("label, least_revenue_yuan", [("small_firm", 5_000_000), ("high_tech_firm", 10_000_000)])
async def test_firm_owners_have_grade_a_small_firms(label, least_revenue_yuan):
    for id_number in ids_of(label):
        tax = await ask(sandbox.SandboxTaxBureau, id_number)
        assert (tax.taxpayer_kind, tax.credit_grade, tax.months_paid_24m) == ("small_firm", "A", 24)
        assert tax.annual_revenue_fen >= yuan(least_revenue_yuan) and tax.unified_social_credit_code[:2] == "91"
        assert tax.registered_months >= 36
        assert tax.high_tech_enterprise == (label == "high_tech_firm")
    for sequence in (58, 123, 218, 305, 606, 733, 861):
        assert not (await ask(sandbox.SandboxTaxBureau, id_of(sequence))).high_tech_enterprise


async def test_farmer_is_registered_with_land_and_a_village_rating():
    for id_number in ids_of("farmer"):
        local = await ask(sandbox.SandboxLocalData, id_number)
        assert local.registered_farmer and local.contracted_land_mu > 0 and local.village_credit_rating in ("AAA", "AA", "A")
    assert not (await ask(sandbox.SandboxLocalData, id_of(123))).registered_farmer


async def test_over_indebted_repays_most_of_their_pay_and_bad_debt_is_flagged():
    for id_number in ids_of("over_indebted"):
        a = await everything(id_number)
        assert a["credit_bureau"].overdue_count_24m == 0
        assert a["credit_bureau"].monthly_debt_payment_fen * 2 > a["social_security"].monthly_base_fen
    for id_number in ids_of("bad_debt"):
        assert (await ask(sandbox.SandboxCreditBureau, id_number)).bad_debt
    assert not (await ask(sandbox.SandboxCreditBureau, id_of(123))).bad_debt


def test_every_sequence_has_one_persona_and_others_are_average():
    for sequence in range(1000):
        matches = [p for p in sandbox.PERSONAS if p.first <= sequence <= p.last]
        assert len(matches) <= 1
        assert sandbox.persona_of(id_of(sequence)).label == (matches[0].label if matches else "average")
    assert sandbox.persona_of(id_of(0)).label == sandbox.persona_of(id_of(850)).label == "average"


async def test_the_same_id_gets_the_same_answers():
    for sequence in (58, 123, 218, 305, 411, 467, 522, 606, 733, 815, 861, 909, 954, 975):
        assert await everything(id_of(sequence)) == await everything(id_of(sequence))


async def test_two_applicants_of_one_persona_differ_in_some_amount():
    for persona in (*sandbox.PERSONAS, sandbox.AVERAGE):
        if persona.answers is None:
            continue
        sequence = 50 if persona is sandbox.AVERAGE else persona.first
        first, second = [amounts(await everything(id_of(sequence, birth))) for birth in BIRTHS[:2]]
        assert first != second, persona.label


async def test_every_money_field_is_int_fen():
    for sequence in range(0, 990, 3):
        for name, value in amounts(await everything(id_of(sequence, BIRTHS[sequence % 3]))).items():
            assert type(value) is int and value >= 0, (sequence, name)


@pytest.mark.parametrize("sandbox_class", [c for c, _, _ in CONTRACTS])
async def test_990_to_994_are_unavailable_and_995_to_999_are_slow(sandbox_class):
    for sequence in range(990, 995):
        with pytest.raises(ports.SourceUnavailable) as raised:
            await ask(sandbox_class, id_of(sequence))
        assert raised.value.source == sandbox_class.source
    for sequence in (995, 999):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ask(sandbox_class, id_of(sequence)), 0.05)


async def test_each_call_is_counted():
    bureau = sandbox.SandboxCreditBureau()
    assert bureau.calls == 0
    await bureau.report(id_of(123), "王建国")
    with pytest.raises(ports.SourceUnavailable):
        await bureau.report(id_of(990), "王建国")
    assert bureau.calls == 2


def test_demo_personas_are_valid_applicants_of_their_persona():
    labels = [label for label, *_ in sandbox.DEMO_PERSONAS]
    assert sorted(labels) == sorted(p.label for p in (*sandbox.PERSONAS, sandbox.AVERAGE))
    births = set()
    for label, id_number, name, phone in sandbox.DEMO_PERSONAS:
        assert validate_id_number(id_number) == id_number and id_number.startswith("320102")
        assert sandbox.persona_of(id_number).label == label
        assert 22 <= age_on(id_number, date(2026, 11, 30)) <= 55
        assert validate_phone(phone) == phone and not phone.endswith(("0000", "9999"))
        assert 2 <= len(name) <= 4
        births.add(id_number[6:14])
    assert len(births) == len(sandbox.DEMO_PERSONAS)


def test_the_persona_table_names_every_persona():
    table = sandbox.describe_personas()
    assert table.startswith("| persona |")
    for persona in sandbox.PERSONAS:
        assert f"| {persona.label} | {persona.first:03d}-{persona.last:03d} |" in table
    assert "| average | any other |" in table


@pytest.mark.parametrize("sandbox_class, protocol, method", CONTRACTS)
async def test_each_sandbox_honours_its_protocol(sandbox_class, protocol, method):
    promised, implemented = getattr(protocol, method), getattr(sandbox_class, method)
    assert inspect.iscoroutinefunction(implemented)
    assert list(inspect.signature(implemented).parameters) == list(inspect.signature(promised).parameters)
    hints = typing.get_type_hints(implemented)
    assert hints == typing.get_type_hints(promised, vars(ports))
    assert sandbox_class.source in ports.SOURCES
    for sequence in (58, 123, 218, 861):
        assert isinstance(await ask(sandbox_class, id_of(sequence)), hints["return"])
