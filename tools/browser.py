"""Open a built atlas in headless Chromium (Debian's chromium and chromium-driver, through
Selenium) and check it as a user meets it: no console error, every image loaded, every link
resolving to a file, sorting that sorts. Used by tests/test_atlas_browser.py and by
``tools/figures.py --only atlas`` (the README's screenshot).

    with chromium() as driver:
        problems = check_page(driver, "atlas/conv3_1.html")
"""
import contextlib
import os
import shutil
from urllib.parse import unquote, urlparse


def why_not():
    """None when headless Chromium can be driven here, else one line saying what is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    for name in ("chromium", "chromedriver"):
        if shutil.which(name) is None:
            return f"{name} is not installed (apt-get install chromium chromium-driver)"
    return None


@contextlib.contextmanager
def chromium(width=1200, height=900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}", "--allow-file-access-from-files"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver, path):
    driver.get("file://" + os.path.abspath(path))
    driver.get_log("browser")        # start each page with an empty console log
    driver.refresh()


def check_page(driver, path):
    """Problems with one page, as short strings (an empty list: none)."""
    open_page(driver, path)
    problems = [f"console: {entry['message'][:200]}" for entry in driver.get_log("browser")
                if entry["level"] in ("SEVERE", "WARNING")]
    broken = driver.execute_script(
        "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src);")
    problems += [f"image did not load: {src}" for src in broken]
    for href in driver.execute_script("return Array.from(document.links).map(a => a.href);"):
        target = urlparse(href)
        if target.scheme != "file":
            problems.append(f"a link leaves the site: {href}")
        elif not os.path.isfile(unquote(target.path)):
            problems.append(f"a link to nothing: {href}")
    return problems


def grid_order(driver):
    """The channels of a layer page's visible units, in the order shown."""
    return driver.execute_script(
        "return Array.from(document.getElementById('grid').children)"
        ".filter(u => u.style.display !== 'none').map(u => Number(u.dataset.channel));")


def choose(driver, select_id, value):
    from selenium.webdriver.support.ui import Select
    Select(driver.find_element("id", select_id)).select_by_value(value)


def screenshot(driver, path, out):
    open_page(driver, path)
    driver.save_screenshot(out)
