"""The tour end to end (small settings): what its index links exists, its accuracy is the test split's,
and a real browser opens its pages from the file system, loads every image and navigates by clicks."""

import json
import os
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import torch
from typer.testing import CliRunner

from inceptionkit import extras, tour
from inceptionkit.cli.main import app
from inceptionkit.data import load_data
from inceptionkit.microscope import SiteSettings
from inceptionkit.weights import load
from inceptionkit.weights.preprocessing import preprocessing_of

SMALL = tour.TourSettings(epochs=2, site=SiteSettings(
    channels=1, steps=8, k=3, images=2, dream_side=64, dream_octaves=2, dream_steps=2, dream_frames=2))


class _WithoutDeployExtra:
    """A meta path finder that makes the deploy extra's packages fail to import, as where it is not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in extras.EXTRAS["deploy"]:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


@pytest.fixture(scope="module")
def tour_run(tmp_path_factory):
    """``inceptionkit tour`` with the small settings (two epochs, which reach about 95%; the defaults train
    for about a minute and render for about another), the deploy extra's packages unimportable (the core
    install runs the tour); returns the folder and what the command printed."""
    out = tmp_path_factory.mktemp("tour") / "tour"
    hidden = {name: module for name, module in sys.modules.items() if name.split(".")[0] in extras.EXTRAS["deploy"]}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tour, "TourSettings", lambda: SMALL)
        patch.setattr(sys, "meta_path", [_WithoutDeployExtra(), *sys.meta_path])
        for name in hidden:
            patch.delitem(sys.modules, name)
        result = CliRunner().invoke(app, ["tour", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_the_tour_end_to_end(tour_run, tmp_path):
    """One test, so that one process runs the tour (two would each run it); the browser comes last, as
    it skips where chromium is missing."""
    out, printed = tour_run
    every_file_the_pages_link_exists(out, printed)
    the_accuracy_it_reports_is_the_test_splits(out, printed)
    a_second_tour_reuses_the_run_and_the_pictures_and_refuses_other_settings(out, tmp_path)
    a_browser_opens_the_pages_loads_every_image_and_navigates_by_clicks(out)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("href", "src") and value:
                self.targets.append(value)


def linked_files(page: Path) -> list[Path]:
    parser = _Links()
    parser.feed(page.read_text())
    return [(page.parent / unquote(urlparse(t).path)).resolve() for t in parser.targets if "://" not in t]


def every_file_the_pages_link_exists(out: Path, printed: str) -> None:
    index = out / "index.html"
    assert f"open {index.resolve()}" in printed.replace("\n", "")
    pages, seen = [index], set()
    while pages:
        page = pages.pop()
        if page in seen:
            continue
        seen.add(page)
        for target in linked_files(page):
            assert target.exists(), f"{page.name} links {target}, which is missing"
            if target.suffix == ".html":
                pages.append(target)
    names = {p.relative_to(out.resolve()).as_posix() for p in map(Path.resolve, seen)}
    assert {"index.html", "microscope/index.html", "microscope/activations.html", "microscope/dream.html",
            "microscope/layers/inception3a.html", "microscope/layers/inception5b.html"} <= names


def the_accuracy_it_reports_is_the_test_splits(out: Path, printed: str) -> None:
    model = load(out / "run").eval()
    prep = preprocessing_of(model)
    test = load_data("digits", prep.input_size, mean=prep.mean, std=prep.std, augment=False).test
    x = torch.stack([image for image, _ in test])
    y = torch.tensor([label for _, label in test])
    bf16 = json.loads((out / "run" / "metrics.json").read_text())["amp"] == "bfloat16"  # as the run evaluated
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.5  # a trained network, not one that answers one class
    assert len(test) == 180  # 10% of the 1,797 digits
    page = (out / "index.html").read_text()
    shown = re.search(r"Test split: top-1 <b>([0-9.]+)</b>", page).group(1)
    assert shown == f"{accuracy:.4f}"
    assert f"<b>{accuracy:.2%}</b><span>test accuracy</span>" in page
    assert f"test top-1 {accuracy:.4f}" in printed


def browser():
    """Headless chromium through selenium, or a skip (locally) / failure (in CI) saying how to install it."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        message = "chromium and chromium-driver are missing: apt-get install chromium chromium-driver (as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def check_page(driver, shots: Path, name: str) -> None:
    """Every image loaded, nothing in the console above info, and a full-page screenshot."""
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
    assert images, f"{name}: no images"
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, f"{name}: images that did not load: {broken}"
    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not errors, f"{name}: console: {errors}"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(height + 120, 6000))
    driver.save_screenshot(str(shots / f"{name}.png"))
    driver.set_window_size(1280, 1000)


def a_browser_opens_the_pages_loads_every_image_and_navigates_by_clicks(out: Path) -> None:
    from selenium.webdriver.common.by import By

    shots = Path(os.environ.get("INCEPTIONKIT_SCREENSHOTS", out / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    driver = browser()
    try:
        driver.get((out / "index.html").resolve().as_uri())
        check_page(driver, shots, "tour")
        driver.find_element(By.LINK_TEXT, "microscope").click()
        assert driver.current_url.endswith("/microscope/index.html")
        check_page(driver, shots, "microscope")
        driver.find_element(By.CSS_SELECTOR, 'a.preview[href="layers/inception4c.html"]').click()
        assert driver.find_element(By.TAG_NAME, "h1").text == "inception4c"
        check_page(driver, shots, "inception4c")
        assert len(driver.find_elements(By.CSS_SELECTOR, ".branch")) == 4  # GoogLeNet's four branches
        driver.find_element(By.LINK_TEXT, "inception5b →").click()
        assert driver.find_element(By.TAG_NAME, "h1").text == "inception5b"
        driver.find_element(By.LINK_TEXT, "all layers").click()
        assert driver.current_url.endswith("/microscope/index.html")
        driver.find_element(By.CSS_SELECTOR, 'svg a[href="layers/inception3a.html"]').click()
        assert driver.find_element(By.TAG_NAME, "h1").text == "inception3a"
        for name in ("activations", "DeepDream"):
            driver.find_element(By.LINK_TEXT, name).click()
            check_page(driver, shots, name)
        driver.back()
        driver.back()
        assert driver.find_element(By.TAG_NAME, "h1").text == "inception3a"
    finally:
        driver.quit()
    print(f"screenshots in {shots}")


def a_second_tour_reuses_the_run_and_the_pictures_and_refuses_other_settings(first: Path, tmp_path: Path) -> None:
    out = tmp_path / "tour"
    shutil.copytree(first, out)  # the first tour's folder stays as the browser then finds it
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tour, "TourSettings", lambda: SMALL)
        again = CliRunner().invoke(app, ["tour", "--out", str(out)])
        other = CliRunner().invoke(app, ["tour", "--out", str(out), "--epochs", "3"])
    assert again.exit_code == 0, again.output
    assert "already trained: test top-1" in again.output and "0 pictures made" in again.output
    assert other.exit_code != 0 and "other settings (epochs 2)" in other.output
