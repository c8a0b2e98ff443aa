"""Product staff in the console (issue 9): the catalogue, a definition as readable tables, a new
version validated, proposed and approved by a second product manager, and a champion/challenger
simulation over an uploaded applicant CSV.

Only GAOXINTIEXI gets a new version here (a new English name: it decides nobody differently), so
other console tests applying for other products are not affected; the simulation saves nothing.
"""

from __future__ import annotations

import re

from server.simulate import SAMPLE

ADMIN = "/api/v1/admin"
PROPOSED = "GAOXINTIEXI"
SIMULATED = "SHUIYITONG"


def catalogue(live, username: str = "assoc.product") -> dict:
    response = live.get(username, f"{ADMIN}/products")
    assert response.status_code == 200, response.text
    return {item["code"]: item for item in response.json()["items"]}


def edit(tab, change) -> None:
    """Change the definition in the editor's textarea with ``change(text) -> text``."""
    box = tab.page.get_by_test_id("definition-text")
    before = box.input_value()
    after = change(before)
    assert after != before, "the edit changed nothing"
    box.fill(after)


def test_the_catalogue_and_a_definition_read_as_tables_and_a_broken_one_is_refused_precisely(console, live):
    tab = console("assoc.product").open("products.html")
    row = tab.page.get_by_test_id(f"product-{SIMULATED}")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == SIMULATED and cells[3] == f"v{catalogue(live)[SIMULATED]['published_version']}"
    assert "省联社" in cells[2] and "政务平台" in cells[4]
    assert "YXRCB" in tab.page.get_by_test_id("product-YUNXIEDAI").locator("td").nth(2).inner_text()  # one bank's own product
    tab.screenshot("products-list")

    row.click()
    admission = tab.page.get_by_test_id("admission")
    admission.wait_for()
    assert "AGE_22_60" in admission.inner_text()
    assert "拒绝" in admission.inner_text()
    assert "1年期 LPR" in tab.page.get_by_test_id("pricing").inner_text()
    assert tab.page.get_by_test_id("bands").locator("tbody tr").count() >= 3
    tab.screenshot("product-definition")

    cap = int(re.search(r"^cap_bps = (\d+)$", tab.page.get_by_test_id("definition-text").input_value(), re.M)[1])
    edit(tab, lambda text: re.sub(r"^floor_bps = \d+$", f"floor_bps = {cap + 100}", text, flags=re.M))
    tab.page.get_by_test_id("validate").click()

    problems = tab.page.get_by_test_id("problems")
    problems.wait_for()
    assert f"pricing: floor_bps {cap + 100} is above cap_bps {cap}" in problems.inner_text()
    assert "DEFINITION_REFUSED" in problems.inner_text()


def test_a_new_version_waits_for_a_second_product_manager_who_publishes_it_in_the_console(console, live):
    before = catalogue(live)[PROPOSED]["published_version"]
    maker = console("assoc.product").open(f"products.html#{PROPOSED}")
    maker.page.get_by_test_id("definition-text").wait_for()
    edit(maker, lambda text: re.sub(r'^name_en = ".*"$', 'name_en = "High-tech firm tax-linked loan (console)"', text, flags=re.M))
    maker.page.get_by_test_id("version-note").fill("英文名称调整")
    maker.page.get_by_test_id("validate").click()
    maker.page.get_by_test_id("editor-status").get_by_text("校验通过").wait_for()

    maker.page.get_by_test_id("propose").click()

    maker.page.get_by_test_id("editor-status").get_by_text("等待第二位产品经理复核").wait_for()
    pending = maker.page.get_by_test_id("pending")
    assert f"v{before + 1}" in pending.inner_text() and "由您提出" in pending.inner_text()
    assert maker.page.get_by_test_id("approve-version").count() == 0
    assert catalogue(live)[PROPOSED]["published_version"] == before

    checker = console("assoc.product2").open(f"products.html#{PROPOSED}")
    checker.page.get_by_test_id("approve-version").click()

    checker.page.get_by_test_id("notice").get_by_text("已批准并发布").wait_for()
    row = checker.page.get_by_test_id(f"product-{PROPOSED}")
    assert row.locator("td").nth(3).inner_text() == f"v{before + 1}"
    assert "已发布" in checker.page.get_by_test_id(f"version-{before + 1}").inner_text()
    assert "已停用" in checker.page.get_by_test_id(f"version-{before}").inner_text()
    assert checker.page.get_by_test_id("pending").count() == 0
    published = catalogue(live)[PROPOSED]
    assert (published["published_version"], published["pending"]) == (before + 1, None)
    text = live.get("assoc.product", f"{ADMIN}/products/{PROPOSED}/versions/{before + 1}").json()["text"]
    assert 'name_en = "High-tech firm tax-linked loan (console)"' in text


def test_a_simulation_on_an_uploaded_csv_shows_both_sides_and_whose_outcome_changed(console, live, tmp_path):
    tab = console("assoc.product").open(f"products.html#{SIMULATED}")
    tab.page.get_by_test_id("definition-text").wait_for()
    edit(tab, lambda text: re.sub(r"(spread_bps = \{ A = )(\d+)", lambda m: f"{m[1]}{int(m[2]) + 30}", text))
    tab.page.get_by_test_id("challenger").select_option("editor")
    tab.page.get_by_test_id("csv-file").set_input_files(str(SAMPLE))

    tab.page.get_by_test_id("simulate").click()

    champion = tab.page.get_by_test_id("approval-rate-champion")
    champion.wait_for(timeout=60_000)
    # What the page shows is what the API computes for the published version alone.
    alone = live.post("assoc.product", f"{ADMIN}/products/{SIMULATED}/simulations", {"csv": SAMPLE.read_text(encoding="utf-8")}).json()["sides"][0]
    assert champion.inner_text() == f"{alone['approval_rate'] * 100:.1f}%（{alone['approved']}）"
    assert tab.page.get_by_test_id("approval-rate-challenger").inner_text() == champion.inner_text()  # only prices moved
    total = int(re.search(r"(\d+) 人", tab.page.get_by_test_id("changes-total").inner_text())[1])
    rows = tab.page.get_by_test_id("changes").locator("tbody tr")
    assert total > 0 and rows.count() == total
    assert "A 档" in rows.first.inner_text()
    tab.screenshot("product-simulation")

    broken = tmp_path / "broken.csv"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:4]
    lines[2] = lines[2].replace("equal_instalment", "weekly")
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tab.page.get_by_test_id("csv-file").set_input_files(str(broken))
    tab.page.get_by_test_id("simulate").click()
    problems = tab.page.get_by_test_id("problems")
    problems.wait_for()
    assert "第 3 行" in problems.inner_text() and "repayment_method" in problems.inner_text()
