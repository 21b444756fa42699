"""The report opened in a real browser: headless Chromium (Debian's ``/usr/bin/chromium``) driven
by Playwright. Skipped, with the reason, when either is missing (install: ``apt-get install
chromium`` and the ``test`` extra, which holds ``playwright``; never ``playwright install``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.report.build import build_report

from fakes import FakeModel, make_prepared

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.is_file(), reason=f"{CHROMIUM} missing (apt-get install -y chromium)"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="playwright missing (pip install -e '.[test]')",
    ),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    prepared = make_prepared(root / "prep", n_images=2)
    cfg = RunConfig(
        prepared=str(prepared),
        model="fake",
        strategies=("S2", "S3", "S5", "interactive"),
        max_clicks=3,
        progress=False,
    )
    evaluate(cfg, root / "run", model=FakeModel())
    # a second model, so the side-by-side tables are wide
    evaluate(
        RunConfig(prepared=str(prepared), model="grabcut", strategies=("S5",), progress=False),
        root / "gc",
    )
    return build_report(root / "run", model=FakeModel(), compare_with=(root / "gc",))


@pytest.mark.parametrize("width", [1280, 800])
def test_report_in_chromium(report: Path, width: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            first = page.evaluate("document.querySelector('section').id")
            assert first == "summary"
            top = page.evaluate("document.querySelector('section h2').textContent")
            assert top == "Summary"
            # the page itself never scrolls sideways; wide tables scroll inside their box
            sw, iw = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
            assert sw <= iw, f"page overflows horizontally: {sw} > {iw}"
            overflow = page.evaluate(
                "[...document.querySelectorAll('div.scroll')]"
                ".map(d => getComputedStyle(d).overflowX)"
            )
            assert overflow and set(overflow) == {"auto"}
            images = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
            assert images and all(done and w > 0 for done, w in images), images
            cfg = page.evaluate(
                "(() => { const d = document.querySelector('#config details');"
                " return d ? [d.open, d.querySelector('table') !== null,"
                " d.querySelector('table').checkVisibility()] : null })()"
            )
            assert cfg is not None, "config is not inside a <details>"
            is_open, has_table, visible = cfg
            # folded: not rendered. (Not the table's bounding box: Chromium lays out a closed
            # <details>' content-visibility:hidden subtree on demand, so its height may be > 0.)
            assert not is_open and has_table and not visible
            # the CSV links resolve to files next to the page
            # at 1280 px no table scrolls sideways, folded ones included (issue 27)
            if width == 1280:
                page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
                wide = page.evaluate(
                    "[...document.querySelectorAll('table')]"
                    ".filter(t => t.scrollWidth > t.parentElement.clientWidth + 1)"
                    ".map(t => t.querySelector('tr').innerText.slice(0, 80))"
                )
                assert wide == [], f"tables wider than the page at 1280 px: {wide}"
                page.evaluate("document.querySelectorAll('details').forEach(d => d.open = false)")
            # the summary names every protocol run: the prompted strategies and interactive
            summary = page.evaluate("document.querySelector('#summary').innerText")
            assert "best strategy" in summary and "interactive (3 clicks)" in summary, summary
            hrefs = page.evaluate(
                "[...document.querySelectorAll('a[href$=\".csv\"]')].map(a => a.href)"
            )
            assert hrefs and all(Path(h.removeprefix("file://")).is_file() for h in hrefs)
        finally:
            browser.close()
