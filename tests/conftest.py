import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from course_fixture import REPO
from mfml_grader import validate

validate_table_key = pytest.StashKey[str]()
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's), driven by Playwright."""
    from playwright.sync_api import sync_playwright

    (REPO / "test-artifacts").mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory, request):
    """Every catalog case of every assignment, graded once: (course root, {assignment: Outcome})."""
    root = tmp_path_factory.mktemp("validate")
    results = {o.assignment: o for o in validate.run(REPO, root, jobs=2)}
    request.config.stash[validate_table_key] = validate.summary(results.values())
    return root, results


@pytest.fixture(scope="session")
def outcomes(graded_course):
    return graded_course[1]


def pytest_terminal_summary(terminalreporter, config):
    """Show how well the grader did (mutants caught and named, variants at full marks)."""
    table = config.stash.get(validate_table_key, None)
    if table:
        terminalreporter.section("grader validation")
        terminalreporter.write_line(table)
