"""Fixtures for real-browser tests: ``lab`` (JupyterLab on a temp folder), ``page``."""

from __future__ import annotations

import os

import pytest

from .lab import chromium, missing, running_lab


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    why = missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {why}")
        pytest.skip(why)
    with running_lab(tmp_path_factory.mktemp("lab-root")) as server:
        yield server


@pytest.fixture
def page(lab):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 1600})
            yield context.new_page()
        finally:
            browser.close()
