"""The contract document as pure rendering: every catalogue product's template renders, every
value is escaped, personal data appears masked only, and the same terms give the same bytes."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import date

import pytest

from lending_core.contracts import rendering
from lending_core.contracts.rendering import ContractTerms, PartyLine, UnknownContractTemplate
from lending_core.loans.schedule import build_schedule, irr_apr_bps
from lending_core.products.service import CATALOGUE, read_catalogue_file

BORROWER = PartyLine("borrower", "林志远", "320102198204101012")
GUARANTOR = PartyLine("guarantor", "周海燕", "32010219750618202X")
CO_BORROWER = PartyLine("co_borrower", "陈美玲", None)
SERVICING = {"penalty_uplift_bps": 5000, "allocation": ["penalty", "interest", "principal"], "early_repayment_fee_bps": 0,
             "day_basis": 360, "credit_line_months": 12, "signing_days": 14}
TERMS = ContractTerms(
    contract_number="HZRCB-20240501-000007",
    template="sunshine_credit_loan",
    bank_name="河州农商银行",
    product_name="阳光E贷",
    product_name_en="Sunshine credit loan",
    limit_fen=15_500_000,
    rate_bps=530,
    penalty_rate_bps=795,
    term_months=12,
    repayment_method="equal_instalment",
    collateral="none",
    servicing=SERVICING,
    generated_on=date(2024, 1, 31),
    sign_by=date(2024, 2, 14),
    parties=(BORROWER, GUARANTOR, CO_BORROWER),
)
PRODUCTS = sorted(path.stem for path in CATALOGUE.glob("*.toml"))


def cells(document: str) -> list[list[str]]:
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(<td>.*?)</tr>", document)]


@pytest.mark.parametrize("code", PRODUCTS)
def test_every_catalogue_product_has_a_template_that_renders(code):
    definition = read_catalogue_file(CATALOGUE / f"{code}.toml")
    parties = (BORROWER, *(PartyLine(role, "周海燕", None) for role in definition.signatories))
    terms = replace(TERMS, template=definition.contract_template, collateral=definition.collateral,
                    repayment_method=definition.repayment_methods[0], term_months=definition.term_months.min,
                    limit_fen=definition.amount_yuan.min * 100, parties=parties)

    document = rendering.render(terms)

    assert document.startswith("<!DOCTYPE html>") and document.rstrip().endswith("</html>")
    assert "$" not in document  # every placeholder filled
    assert rendering.TEMPLATES[definition.contract_template][0] in document
    assert ("保证人自愿为借款人" in document) == ("guarantor" in definition.signatories)
    assert ("共同借款人与借款人共同作为债务人" in document) == ("co_borrower" in definition.signatories)
    assert ("存单质押" in document) == (definition.collateral == "deposit_pledge")
    assert ("抵押登记" in document) == (definition.collateral == "property_mortgage")


def test_an_unknown_template_is_refused():
    with pytest.raises(UnknownContractTemplate):
        rendering.render(replace(TERMS, template="car_loan"))


def test_the_example_schedule_is_the_full_limit_drawn_on_the_day_it_is_made():
    document = rendering.render(TERMS)
    schedule = build_schedule("equal_instalment", TERMS.limit_fen, TERMS.rate_bps, TERMS.term_months, TERMS.generated_on)

    rows = [row for row in cells(document) if len(row) == 6]

    assert len(rows) == 12
    assert rows[0] == ["1", "2024-02-29", *(f"{v // 100}.{v % 100:02d}" for v in (
        schedule.instalments[0].principal_fen, schedule.instalments[0].interest_fen, schedule.instalments[0].total_fen,
        schedule.instalments[0].closing_principal_fen))]
    assert [row[1] for row in rows[:3]] == ["2024-02-29", "2024-03-31", "2024-04-30"]  # day 31, month ends
    assert rows[-1][-1] == "0.00"
    principal = sum(int(row[2].replace(".", "")) for row in rows)
    assert principal == TERMS.limit_fen


def test_terms_are_written_in_words_and_figures_a_customer_can_check():
    document = rendering.render(TERMS)

    assert "人民币 155000.00 元" in document
    assert "<td>5.30%</td>" in document  # rate and APR
    assert irr_apr_bps(TERMS.limit_fen, rendering.example_schedule(TERMS)) == TERMS.rate_bps
    assert "APR equals the nominal annual rate" in document
    assert "7.95%" in document and "50.00%" in document
    assert "等额本息 / Equal instalments" in document
    assert "罚息 → 利息 → 本金" in document and "penalty interest → interest → principal" in document
    assert "年利率 ÷ 360" in document
    assert "自合同生效之日起 12 个月" in document
    assert "不收取提前还款违约金" in document
    fee = rendering.render(replace(TERMS, servicing={**SERVICING, "early_repayment_fee_bps": 100, "allocation": ["interest", "principal", "penalty"]}))
    assert "按提前归还本金的 1.00% 收取违约金" in fee and "利息 → 本金 → 罚息" in fee


@pytest.mark.parametrize("method", ["equal_instalment", "equal_principal", "interest_only", "bullet"])
def test_each_repayment_method_is_named_in_chinese_and_english(method):
    document = rendering.render(replace(TERMS, repayment_method=method))
    cn, en, _ = rendering.METHODS[method]
    assert f"{cn} / {en}" in document


def test_personal_data_appears_masked_only():
    document = rendering.render(TERMS)

    for clear in ("林志远", "周海燕", "陈美玲", BORROWER.id_number, GUARANTOR.id_number):
        assert clear not in document
    parties = [row for row in cells(document) if len(row) == 3 and "/" in row[0]]
    assert parties[:3] == [
        ["借款人 / Borrower", "林*远", "3201**********1012"],
        ["保证人 / Guarantor", "周*燕", "3201**********202X"],
        ["共同借款人 / Co-borrower", "陈*玲", "签署时核验 / verified at signing"],
    ]


def test_every_value_is_escaped():
    hostile = replace(TERMS, bank_name="<script>alert(1)</script>", product_name='"&<>', parties=(
        PartyLine("borrower", "<img src=x onerror=alert(1)>", None),))

    document = rendering.render(hostile)

    assert "<script>" not in document and "<img" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert "&quot;&amp;&lt;&gt;" in document


def test_the_same_terms_give_the_same_bytes_and_their_hash():
    first, second = rendering.render(TERMS), rendering.render(TERMS)
    assert first == second
    assert rendering.document_sha256(first) == hashlib.sha256(first.encode("utf-8")).hexdigest()
    assert rendering.document_sha256(rendering.render(replace(TERMS, rate_bps=531))) != rendering.document_sha256(first)


def test_rates_are_written_from_basis_points_without_floats():
    assert [rendering.percent_text(bps) for bps in (0, 5, 435, 1500, 5000)] == ["0.00%", "0.05%", "4.35%", "15.00%", "50.00%"]
    with pytest.raises(TypeError):
        rendering.percent_text(4.35)
