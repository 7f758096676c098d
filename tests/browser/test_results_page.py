"""The results page in a real browser: headless Chromium (Debian's `chromium`, driven by
Playwright with the system browser) loads it from `wijkbudget serve`, with JavaScript off
for the content, at phone and desktop widths, and axe-core finds no serious or critical
accessibility issue.

Chromium and axe-core (tests/browser/package.json, installed with `npm ci`) must be there
when CI=true: the test fails without them there, and is skipped only on a developer's
machine that lacks them. Set RESULTS_SCREENSHOT=docs/results-page.png to refresh the
README's screenshot.
"""

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import ViewportSize, expect, sync_playwright
from sqlalchemy import Engine
from sqlmodel import Session

from tests.conftest import TEST_SECRET
from tests.factories import make_user, make_voting_process, token_for
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


def required(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing: CI must install it (see .ci/run)")
    pytest.skip(f"{what} is missing (CI installs it; see .ci/run)")


def axe_script() -> Path:
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            required("npm (to install axe-core)")
        assert npm is not None
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=300)
    return AXE


def chromium_path() -> str:
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if path is None:
        required("chromium (apt-get install chromium)")
    assert path is not None
    return path


@pytest.fixture
def server(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[ServerProcess]:
    running = ServerProcess(database_url, tmp_path, name="wb-browser", workers=1)
    yield running
    running.stop()


def publish_a_process(server: ServerProcess, session: Session) -> tuple[int, dict[str, Any]]:
    """Oosterpark-like: six proposals, twelve ballots, published with Equal Shares."""
    admin = make_user(session, role="admin")  # type: ignore[arg-type]
    author = make_user(session)
    process, proposals = make_voting_process(
        session,
        author,
        costs=(9_000, 6_500, 4_000, 3_000, 2_500, 1_200),
        budget=18_000,
        tally_rule="mes",
        title="Oosterpark 2026",
    )
    titles = [
        "Speeltuin Zaagmuldersweg",
        "Bankjes langs het Oosterpark",
        "Moestuin voor de buurt",
        "Fietsenrekken bij de school",
        "Bloembakken Oosterhamrikkade",
        "Buurtfeest",
    ]
    for proposal, title in zip(proposals, titles, strict=True):
        proposal.title = title
        session.add(proposal)
    session.commit()
    ids = [p.id for p in proposals]
    choices = [
        [ids[0], ids[1]],
        [ids[0]],
        [ids[0], ids[3]],
        [ids[0], ids[5]],
        [ids[1], ids[2]],
        [ids[1], ids[4]],
        [ids[2], ids[3]],
        [ids[2]],
        [ids[3], ids[5]],
        [ids[4]],
        [ids[0], ids[2]],
        [ids[1]],
    ]
    voters = [make_user(session) for _ in choices]
    server.start()
    base = f"{server.base}/processes/{process.id}"
    with httpx.Client(timeout=60) as http:
        for voter, choice in zip(voters, choices, strict=True):
            headers = {"Authorization": f"Bearer {token_for(voter, TEST_SECRET)}"}
            cast = http.put(f"{base}/ballot", json={"proposal_ids": choice}, headers=headers)
            assert cast.status_code == 200, cast.text
        admin_headers = {"Authorization": f"Bearer {token_for(admin, TEST_SECRET)}"}
        assert http.get(f"{base}/results.html").status_code == 404
        closed = http.post(f"{base}/transition", json={"to": "closed"}, headers=admin_headers)
        assert closed.status_code == 200, closed.text
        published = http.post(f"{base}/results", headers=admin_headers)
        assert published.status_code == 201, published.text
    assert process.id is not None
    return process.id, published.json()


def test_results_page_in_a_real_browser(
    server: ServerProcess, session: Session, tmp_path: Path
) -> None:
    executable = chromium_path()
    axe = axe_script()
    process_id, results = publish_a_process(server, session)
    url = f"{server.base}/processes/{process_id}/results.html"
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            # The content, with JavaScript off: the page needs none.
            static = browser.new_context(java_script_enabled=False, viewport=DESKTOP)
            page = static.new_page()
            response = page.goto(f"{url}?lang=en")
            assert response is not None
            assert response.status == 200
            assert page.locator("h1").inner_text() == "Results: Oosterpark 2026"
            assert page.locator("h2").count() >= 6
            captions = page.locator("caption").all_inner_texts()
            assert len(captions) == 3
            rows = page.locator("table").first.locator("tbody tr")
            assert rows.count() == 6
            selected = {
                p["title"] for p in results["projects"] if p["selected"]
            }  # every selected project is listed as such
            for row in rows.all():
                cells = row.locator("th, td").all_inner_texts()
                assert (cells[4] == "yes") == (cells[1] in selected)
            # The chart's accessible name and description, as the browser computes them.
            chart = page.locator("figure svg")
            expect(chart).to_have_accessible_name("Votes and cost per project: Oosterpark 2026")
            expect(chart).to_have_accessible_description(re.compile("^Bar chart with two bars"))
            assert page.get_by_text(results["digest"]).count() == 1
            for name in ("Projects as CSV (spreadsheet)", "Every ballot in pabulib format"):
                link = page.get_by_role("link", name=name)
                href = link.get_attribute("href")
                assert href is not None
                assert httpx.get(f"{server.base}/processes/{process_id}/{href}").status_code == 200
            assert page.get_by_text("It would have been selected at a cost of").count() >= 1
            static.close()

            # Phone and desktop, with axe-core's checks (JavaScript on, for axe).
            for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
                # A Dutch browser: Accept-Language picks the language.
                context = browser.new_context(viewport=viewport, locale="nl-NL")
                page = context.new_page()
                page.goto(url, wait_until="load")
                assert page.locator("html").get_attribute("lang") == "nl"
                # Nothing wider than the screen: tables scroll in their own box.
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, f"{name}: the page is {overflow}px wider than the screen"
                shot = tmp_path / f"results-{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                if name == "desktop" and os.environ.get("RESULTS_SCREENSHOT"):
                    page.screenshot(path=os.environ["RESULTS_SCREENSHOT"], full_page=True)
                page.add_script_tag(path=str(axe))
                found = page.evaluate("async () => (await axe.run(document)).violations")
                serious = [
                    (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                    for v in found
                    if v["impact"] in ("serious", "critical")
                ]
                assert serious == [], f"{name}: {serious}"
                context.close()

            # The chart alone loads as an image.
            context = browser.new_context()
            page = context.new_page()
            svg = page.goto(f"{server.base}/processes/{process_id}/results.svg")
            assert svg is not None
            assert svg.headers["content-type"] == "image/svg+xml"
            context.close()
        finally:
            browser.close()
