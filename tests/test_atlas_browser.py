"""The atlas in a real browser: headless Chromium opens the built site from file:// and finds
no console error, every image loaded, every link resolving, and sorting and filtering that
work. Where Chromium, its driver or Selenium cannot be had, this skips with one line (the
pure-Python check of links and assets in test_atlas.py still runs)."""
import json
import os
import sys

import pytest

from conftest import ATLAS_SMALL as SMALL
from minicnn.atlas import build
from minicnn.weights import load_model

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import browser  # noqa: E402  (tools/browser.py)

missing = browser.why_not()
pytestmark = pytest.mark.skipif(missing is not None, reason=f"no headless browser: {missing}")


@pytest.fixture
def site(small_atlas):
    return small_atlas


@pytest.fixture(scope="module")
def driver():
    with browser.chromium() as d:
        yield d


def test_every_page_opens_clean(site, driver):
    """Every page of the site (two layers: 32 unit pages): no console error or warning,
    every image loaded, every link a file of the site."""
    pages = [os.path.join(folder, name) for folder, _, files in os.walk(site) for name in files if name.endswith(".html")]
    assert len(pages) == 1 + 2 + 16 + 16
    problems = {p: browser.check_page(driver, p) for p in sorted(pages)}
    assert {p: v for p, v in problems.items() if v} == {}


def test_sorting_and_filtering_work(site, driver):
    analysis = json.loads((site / "conv1_2" / "analysis.json").read_text())
    units = analysis["units"]
    browser.open_page(driver, site / "conv1_2.html")
    assert browser.grid_order(driver) == list(range(16))
    browser.choose(driver, "sort", "curve")
    scores = [units[c]["curves"]["score"] for c in browser.grid_order(driver)]
    assert scores == sorted(scores, reverse=True) and browser.grid_order(driver) != list(range(16))
    browser.choose(driver, "sort", "selectivity")
    values = [units[c]["selectivity"] for c in browser.grid_order(driver)]
    assert values == sorted(values, reverse=True)
    label = units[0]["label"]
    browser.choose(driver, "label", label)
    shown = browser.grid_order(driver)
    assert shown and sorted(shown) == [c for c in range(16) if units[c]["label"] == label]
    assert driver.find_element("id", "count").text == f"{len(shown)} of 16 units"
    browser.choose(driver, "label", "all")
    driver.find_element("id", "selective").send_keys("0.2")
    assert sorted(browser.grid_order(driver)) == [c for c in range(16) if units[c]["selectivity"] >= 0.2]
    driver.find_element("id", "selective").clear()
    driver.find_element("id", "detectors").click()
    assert sorted(browser.grid_order(driver)) == [c for c in range(16) if units[c]["curves"]["curve_detector"]]


def test_a_site_stopped_midway_opens_clean(tmp_path, driver):
    """Interrupted after its first task, the site still opens with nothing broken."""
    def stop(task):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        build(load_model("world", quiet=True), outdir=tmp_path / "s", on_result=stop, **SMALL)
    for page in ("index.html", "conv1_1.html", "conv1_2.html", "conv1_2/3.html"):
        assert browser.check_page(driver, tmp_path / "s" / page) == [], page
    assert "not rendered" in (tmp_path / "s" / "conv1_2.html").read_text()
