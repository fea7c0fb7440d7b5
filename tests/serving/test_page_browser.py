"""The page in a real browser: Playwright drives Debian's Chromium against the real server (one for the
module), on the model trained on the seed data.

Chromium comes from ``apt-get install chromium`` (``make test`` installs it when missing); Playwright's own
browser download is not used. The overview, the plan and the campaigns are photographed into ``tmp_path``,
and also into ``$CHURNCLV_SCREENSHOTS`` when it is set (``make screenshots``: the README's pictures).
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.serving.test_server import BEARER, KEY, running_server

CHROMIUM = os.environ.get("CHURNCLV_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def url(trained_home, tmp_path_factory):
    """The server, on a campaign store of its own holding the seed's finished past campaign (as ``make run``)."""
    from churnclv.contract.settings import Settings
    from churnclv.quickstart import seed_campaign

    folder = tmp_path_factory.mktemp("page-server")
    store = f"sqlite:///{folder / 'churnclv.db'}"
    seed_campaign(Settings.load({"CHURNCLV_HOME": str(folder), "CHURNCLV_DB_URL": store}))
    with running_server(trained_home.home, folder, workers=1, CHURNCLV_DB_URL=store) as address:
        yield address


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (make test does it when missing)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture()
def page(browser, url):
    context = browser.new_context(viewport=WIDE, accept_downloads=True)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    opened.goto(f"{url}/app")
    yield opened
    context.close()


def shoot(page, name: str, tmp_path: Path) -> None:
    """A full-page PNG into tmp_path, and into $CHURNCLV_SCREENSHOTS when set."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.screenshot(path=tmp_path / name, full_page=True)
    if folder := os.environ.get("CHURNCLV_SCREENSHOTS"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / name, Path(folder) / name)
    assert (tmp_path / name).stat().st_size > 10_000


def sign_in(page, key: str = KEY) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")  # the keyboard submits the form


def test_sign_in_refuses_a_wrong_key_then_shows_the_overview(page, url, trained_home, batch, tmp_path):
    sign_in(page, "not-the-key-0123456789")
    expect(page.locator("#login-error")).to_contain_text("not accepted")
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("sessionStorage.getItem('churnclv.key')") is None

    sign_in(page)
    expect(page.locator("#grade")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('churnclv.key')") == KEY and KEY not in page.url
    expect(page.locator("#served")).to_contain_text(f"churn-clv v{trained_home.version}")
    expect(page.locator("#scores-as-of")).to_have_text("2025-12-31")
    expect(page.locator("#total-customers")).to_have_text(f"{len(batch):,}")
    expect(page.locator("#stale-banner")).to_contain_text("longer ago than the model's 90-day horizon")
    lift = httpx.get(f"{url}/model", headers=BEARER, timeout=30).json()["metrics"]["lift_top_decile"]
    expect(page.locator("#grade-sentence")).to_contain_text(f"caught {lift:.1f}× as many churners as random")
    rows = page.locator("#segments tbody tr")
    expect(rows).to_have_count(batch["segment"].nunique())
    steady = (batch["segment"] == "steady").sum()
    expect(page.locator('#segments tr[data-segment="steady"]')).to_contain_text(f"{steady:,}")
    shoot(page, "overview.png", tmp_path)

    # the steady segment's name on the page follows its figures (serving.page.words.segment_name)
    page.locator('#segments tr[data-segment="steady"]').get_by_role("button", name="List").click()
    expect(page.locator("#list-range")).to_have_text(f"1–25 of {steady:,}")
    page.locator("#segment-list").get_by_role("button", name="Next").click()
    expect(page.locator("#list-range")).to_have_text(f"26–50 of {steady:,}")

    page.reload()  # the key stays for the tab's session
    expect(page.locator("#grade")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('churnclv.key')") is None


def curve_mark(page) -> tuple[str, str]:
    figure = page.locator("#profit-curve")
    return figure.get_attribute("data-chosen"), page.locator("#profit-curve circle.chosen").get_attribute("cx")


def test_a_plan_by_budget_changes_with_the_budget_and_downloads_what_prioritise_returns(page, url, tmp_path):
    sign_in(page)
    page.get_by_role("button", name="Contact plan").click()
    expect(page.locator("#profit-curve")).to_be_visible()
    page.get_by_label("Save rate (%)").fill("150")
    assert page.get_by_label("Save rate (%)").evaluate("input => input.validity.rangeOverflow")  # the browser says no
    page.get_by_label("Save rate (%)").fill("15")
    page.get_by_label("Cost of one contact").fill("2")
    page.get_by_role("radio", name="Budget").check()
    page.locator("#budget").fill("1")
    page.get_by_role("button", name="Make the plan").click()  # the server says no: the budget buys nobody
    expect(page.locator("#plan > .error")).to_contain_text("budget: 1 does not pay for one contact at 2")
    expect(page.locator("#budget")).to_have_attribute("aria-invalid", "true")

    page.locator("#budget").fill("100")
    page.get_by_role("button", name="Make the plan").click()
    expect(page.locator("#plan-range")).to_have_text("1–25 of 50")
    expect(page.locator("#plan > .error")).to_be_hidden()
    small = curve_mark(page)
    assert small[0] == "50"

    page.locator("#budget").fill("400")
    page.locator("#budget").press("Enter")
    expect(page.locator("#plan-range")).to_have_text("1–25 of 200")
    large = curve_mark(page)
    assert large[0] == "200" and float(large[1]) > float(small[1])  # the marker moved right along the curve
    expect(page.locator("#plan-contacts")).to_have_text("200")
    shoot(page, "plan.png", tmp_path)

    with page.expect_download() as download:
        page.get_by_role("button", name="Download the list").click()
    path = tmp_path / "plan.csv"
    download.value.save_as(path)
    rows = list(csv.DictReader(path.open()))
    expected = httpx.post(f"{url}/prioritise", headers=BEARER,
                          json={"limit": 200, "contact_cost": 2, "save_rate": 0.15}, timeout=30).json()["customers"]
    assert len(rows) == len(expected) == 200
    for row, want in zip(rows, expected):
        assert {k: row[k] for k in ("customer_id", "segment", "recommended_action")} == \
            {k: want[k] for k in ("customer_id", "segment", "recommended_action")}
        assert int(row["rank"]) == want["rank"]
        assert float(row["expected_value_saved"]) == want["expected_value_saved"]
        assert float(row["value_at_risk"]) == want["value_at_risk"]


def test_open_a_customer_from_the_plan_and_by_search(page, batch):
    sign_in(page)
    page.get_by_role("button", name="Contact plan").click()
    first = page.locator("#plan-list button[data-customer]").first
    cid = first.inner_text()
    first.click()
    expect(page.locator("#customer-name")).to_have_text(f"Customer {cid}")
    segment = batch.set_index("customer_id").loc[cid, "segment"]
    expect(page.locator("#customer-segment")).to_have_text(segment.replace("_", " ").capitalize())
    expect(page.locator("#customer-drivers li").first).to_contain_text("the churn risk")

    page.get_by_label("Customer id").fill("nobody")
    page.get_by_label("Customer id").press("Enter")
    expect(page.locator("#customer > .error")).to_contain_text("no customer 'nobody'")
    other = batch["customer_id"].iloc[7]
    page.get_by_label("Customer id").fill(other)
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page.locator("#customer-name")).to_have_text(f"Customer {other}")
    expect(page.locator("#customer > .error")).to_be_hidden()


def test_the_plan_reads_on_a_phone(browser, url, tmp_path):
    context = browser.new_context(viewport=PHONE, is_mobile=True, device_scale_factor=1)
    page = context.new_page()
    page.goto(f"{url}/app#plan")
    sign_in(page)
    expect(page.locator("#profit-curve")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width  # wide tables scroll inside their box, not the page
    shoot(page, "plan-phone.png", tmp_path)
    context.close()


def test_campaigns_record_a_plan_list_it_and_show_a_measured_effect_with_both_lists(page, url, tmp_path):
    sign_in(page)
    page.get_by_role("button", name="Contact plan").click()
    expect(page.locator("#save-rates")).to_contain_text("measured: 1 campaign(s)")  # from the seed's past campaign

    page.get_by_role("button", name="Campaigns", exact=True).click()
    past = page.locator("#campaign-list tr", has_text="seed-autumn-2025")
    expect(past.locator(".status")).to_have_text("finished")
    past.get_by_role("button").click()
    expect(page.locator("#effect-chart")).to_be_visible()
    expect(page.locator("#effect-table tbody tr")).to_have_count(5)  # four segments and all of them
    expect(page.locator("#effect-chart circle.harmful")).to_have_count(1)  # the loyal sleeping dogs
    shoot(page, "campaigns.png", tmp_path)
    detail = httpx.get(f"{url}/campaigns/seed-autumn-2025", headers=BEARER, timeout=30).json()
    with page.expect_download() as download:
        page.locator("#download-controls").click()
    path = tmp_path / "controls.csv"
    download.value.save_as(path)
    assert len(list(csv.DictReader(path.open()))) == detail["n_control"]

    page.get_by_label("Campaign name").fill("browser-made")
    page.get_by_label("Control group (%)").fill("20")
    page.get_by_label("Global holdout (%)").fill("10")
    page.get_by_label("Contacts (at most)", exact=True).last.fill("150")
    page.get_by_role("button", name="Record the plan as a campaign").click()
    expect(page.locator("#campaign-created")).to_have_text("Recorded.")
    expect(page.locator("#campaign-list tr", has_text="browser-made").locator(".status")).to_have_text("running")
    made = httpx.get(f"{url}/campaigns/browser-made", headers=BEARER, timeout=30).json()
    assert made["n_treated"] + made["n_control"] + made["n_held_out"] <= 150 and made["control_share"] == 0.2
    assert made["holdout_share"] == 0.1 and made["n_held_out"] > 0
    expect(page.locator("#campaign-holdout")).to_contain_text(f"{made['n_held_out']} in the global holdout (10%")
