"""A real headless browser (Debian's chromium, driven by selenium through chromium-driver).

`make test` installs both packages. Screenshots go to tests/artifacts/ (git-ignored) so a person can
look at what the test saw.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@contextmanager
def headless_chromium(width: int = 1280, height: int = 1100) -> Iterator[webdriver.Chrome]:
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        raise RuntimeError("chromium and chromium-driver are not installed; `make test` installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=DriverService(driver), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def screenshot(browser: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    browser.save_screenshot(str(path))
    return path
