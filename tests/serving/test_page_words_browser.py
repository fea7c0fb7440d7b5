"""Words that hold on every log, read in a real browser: on the seed data and on CDNOW (as of 1998-03-31, where
about nine in ten customers buy nothing in a quarter) the grade follows the one stated rule (the churn AUC shown
beside it, by the bands listed on the page), and no segment's name contradicts its own mean churn risk."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from playwright.sync_api import expect

from churnclv.serving.page import words
from tests.serving.test_page_browser import CHROMIUM, WIDE, browser, sign_in  # noqa: F401 (the browser fixture)
from tests.serving.test_server import BEARER, running_server

CDNOW_AS_OF = "1998-03-31"


def cdnow_home(folder: Path) -> Path:
    """A CHURNCLV_HOME with a model trained on CDNOW up to 1998-03-31 (the tests' fast settings) and its scores."""
    from churnclv.features import load_transactions
    from churnclv.scoring.bundle import score_table
    from churnclv.scoring.registry import connect, load_bundle
    from churnclv.scoring.scores import score_metadata, write_scores
    from churnclv.training.jobs import run_training
    from tests.conftest import fast_config

    tx = load_transactions("cdnow")
    client = connect(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}", folder / "mlruns" / "artifacts")
    run_training(tx, as_of=CDNOW_AS_OF, config=fast_config(), dataset="cdnow", client=client,
                 artifact_root=folder / "mlruns" / "artifacts", plots_dir=folder / "plots")
    bundle = load_bundle(client, "models:/churn-clv@champion")
    write_scores(score_table(bundle, tx, as_of=CDNOW_AS_OF), folder / "scores" / "latest.parquet",
                 score_metadata(bundle, as_of=CDNOW_AS_OF))
    return folder


def bands_on_the_page(page) -> dict[str, tuple[float, float]]:
    """The AUC range of each grade as the page states it (in %, lower bound included)."""
    ranges, upper = {}, 100.0
    for item in page.locator(".bands li").all_text_contents():
        letter, text = " ".join(item.split()).split(" ", 1)
        numbers = [float(n) for n in re.findall(r"(\d+)% ", text + " ")]
        low = numbers[0] if letter != "E" else 0.0
        ranges[letter] = (low, upper)
        upper = low
    return ranges


def read_overview(browser, url: str) -> dict:  # noqa: F811
    context = browser.new_context(viewport=WIDE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{url}/app")
    sign_in(page)
    expect(page.locator("#grade")).to_be_visible()
    shown = {
        "letter": page.locator("#grade").inner_text().strip(),
        "auc_text": page.locator("#grade-auc").inner_text(),
        "sentence": page.locator("#grade-sentence").inner_text(),
        "bands": bands_on_the_page(page),
        "names": {row.get_attribute("data-segment"): row.locator("th").inner_text().strip()
                  for row in page.locator("#segments tbody tr").all()},
    }
    context.close()
    return shown


def check_words(shown: dict, url: str) -> dict:
    """The grade is the band of the AUC beside it; every segment's name agrees with its figures."""
    auc = httpx.get(f"{url}/model", headers=BEARER, timeout=10).json()["metrics"]["roc_auc"]
    assert f"riskier {100 * auc:.0f}% of the time" in shown["auc_text"]
    low, high = shown["bands"][shown["letter"]]
    assert low <= 100 * auc < high, (shown["letter"], auc, shown["bands"])
    assert shown["letter"] == words.band(auc)[0]
    table = httpx.get(f"{url}/segments", headers=BEARER, timeout=10).json()
    overall = sum(s["churn_probability"] * s["customers"] for s in table["segments"]) / table["customers"]
    for s in table["segments"]:
        name, churn = shown["names"][s["segment"]], s["churn_probability"]
        assert name == words.segment_name(s["segment"], churn, overall)
        if name in ("Steady", "Loyal"):
            assert churn < 0.5, (name, churn)
        if name in ("At risk", "High value at risk"):
            assert churn >= 0.5 or churn >= overall, (name, churn, overall)
    return {"auc": auc, "overall": overall, "table": table}


def names_served(url: str) -> dict[str, str]:
    """Each segment's name by the page's one rule, from what ``GET /segments`` answers."""
    table = httpx.get(f"{url}/segments", headers=BEARER, timeout=10).json()
    return words.segment_names(SimpleNamespace(**s) for s in table["segments"])


def contradicted(names: dict[str, str]) -> list[str]:
    """The policy's names that the page replaced (each would contradict its segment's figures)."""
    return [words.label(key) for key, name in names.items() if name != words.label(key)]


def no_contradicting_name_in(page, names: dict[str, str], where: str) -> None:
    text = page.locator("#main").inner_text()
    for word in contradicted(names):
        assert not re.search(rf"\b{word}\b", text), (where, word)


def read_every_view(browser, url: str, tmp_path: Path) -> dict[str, str]:  # noqa: F811
    """Overview, a segment's list, the plan (checkboxes, save rates, list, CSV) and the customer view all call
    every segment by the same name, the one rule's (``words.segment_names``), and never by a replaced one."""
    names = names_served(url)
    assert len(set(names.values())) == len(names)  # one name, one segment
    context = browser.new_context(viewport=WIDE, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{url}/app")
    sign_in(page)
    expect(page.locator("#grade")).to_be_visible()
    assert {row.get_attribute("data-segment"): row.locator("th").inner_text().strip()
            for row in page.locator("#segments tbody tr").all()} == names
    no_contradicting_name_in(page, names, "overview")

    listed = next((k for k, name in names.items() if name != words.label(k)), next(iter(names)))  # renamed, if any
    page.locator(f'#segments tr[data-segment="{listed}"]').get_by_role("button", name="List").click()
    expect(page.locator("#list-title")).to_have_text(f"{names[listed]}, by value at risk")
    assert set(page.locator("#customer-list tbody td:nth-child(3)").all_inner_texts()) == {names[listed]}
    no_contradicting_name_in(page, names, "a segment's customers")

    page.get_by_role("button", name="Contact plan").click()
    expect(page.locator("#profit-curve")).to_be_visible()
    boxes = {box.get_attribute("value"): box.locator("xpath=..").inner_text().rsplit("(", 1)[0].strip()
             for box in page.locator('#plan-form input[name="segments"]').all()}
    assert boxes == {key: names[key] for key in boxes} and set(boxes) == set(names)
    page.get_by_label("Cost of one contact").fill("0")
    page.get_by_label("Save rate (%)").fill("50")
    page.get_by_role("button", name="Make the plan").click()
    expect(page.locator("#plan-range")).to_have_text("1–25 of 100")
    rates = page.locator("#save-rates tbody td:nth-child(1)").all_inner_texts()
    assert rates and set(rates) <= set(names.values())
    no_contradicting_name_in(page, names, "the plan")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the list").click()
    download.value.save_as(tmp_path / "plan.csv")
    rows = list(csv.DictReader((tmp_path / "plan.csv").open()))
    assert len(rows) == 100 and all(r["segment_name"] == names[r["segment"]] for r in rows)
    assert page.locator("#plan-list tbody td:nth-child(3)").all_inner_texts() == [r["segment_name"] for r in rows[:25]]

    for key in names:  # a customer of every segment, as the customer view calls them
        cid = httpx.post(f"{url}/customers", headers=BEARER, json={"segment": key, "limit": 1},
                         timeout=10).json()["customers"][0]["customer_id"]
        page.get_by_role("button", name="Customer", exact=True).click()
        page.get_by_label("Customer id").fill(cid)
        page.get_by_label("Customer id").press("Enter")
        expect(page.locator("#customer-name")).to_have_text(f"Customer {cid}")
        expect(page.locator("#customer-segment")).to_have_text(names[key])
        no_contradicting_name_in(page, names, f"customer {cid}")
    context.close()
    return names


def test_the_seed_datas_page_grades_by_the_stated_rule(browser, trained_home, tmp_path):  # noqa: F811
    with running_server(trained_home.home, tmp_path, workers=1) as url:
        shown = read_overview(browser, url)
        check_words(shown, url)
        read_every_view(browser, url, tmp_path)


@pytest.mark.slow
def test_cdnows_page_grades_by_the_same_rule_and_renames_the_steady_segment(browser, tmp_path):  # noqa: F811
    home = cdnow_home(tmp_path / "home")
    with running_server(home, tmp_path, workers=1) as url:
        shown = read_overview(browser, url)
        found = check_words(shown, url)
        names = read_every_view(browser, url, tmp_path)
    assert "Steady" in contradicted(names)  # renamed on every view, not only the overview
    assert found["overall"] > 0.8  # most of CDNOW's customers buy nothing in a quarter
    assert shown["letter"] in ("A", "B", "C")  # a good ranking, graded as one whatever the base rate
    assert "the best possible is 1.1" in shown["sentence"]  # the lift beside its ceiling, 1 / churn rate
    steady = next(s for s in found["table"]["segments"] if s["segment"] == "steady")
    assert steady["churn_probability"] >= 0.5 and shown["names"]["steady"] != "Steady"  # the 85% 'Steady'
