"""The student and instructor paths in a real browser: JupyterLab with nbgrader's extensions, driven
in headless Chromium by Playwright. Screenshots go to test-artifacts/ (ignored by git).
"""

import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy
import pytest

from course_fixture import ARTIFACTS, REPO, Course, nbgrader_env
from mfml_grader.course import grade_id, is_test_cell

A = "ps1_linear_algebra"



def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on loopback, serving `root`."""

    def __init__(self, root):
        self.port, self.token = _free_port(), "course-test-token"
        self.log = open(Path(root) / "jupyter.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
             f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={root}", "--ServerApp.disable_check_xsrf=True", "--allow-root"],
            cwd=root, env=nbgrader_env(HOME=str(root)), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                urllib.request.urlopen(self.url("api/status"), timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("JupyterLab did not start: " + Path(self.log.name).read_text()[-2000:])

    def url(self, path):
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    grading = Course.copy_of_repo(tmp_path_factory.mktemp("browser-course"))
    grading.nbgrader("generate_assignment", A)
    return grading


def test_student_edits_runs_and_validates(browser, course, tmp_path):
    home = tmp_path / "student"
    home.mkdir()
    shutil.copy(course.root / "release" / A / f"{A}.ipynb", home / f"{A}.ipynb")
    lab = Lab(home)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(lab.url(f"lab/tree/{A}.ipynb"))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator, .jp-KernelStatus, .jp-Toolbar", timeout=60_000)
        solution = page.locator(".jp-CodeCell", has_text="def l2_norm").first
        solution.locator(".cm-content").click()
        page.keyboard.press("Control+a")
        page.keyboard.type("def l2_norm(x, dim=-1):\nreturn (x * x).sum(dim).sqrt()")  # the editor indents
        page.keyboard.press("Escape")
        page.locator(".jp-Notebook").click(position={"x": 5, "y": 5})
        page.keyboard.press("Control+s")
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.locator('li[data-command="runmenu:run-all"]').click()
        passed = page.locator(".jp-OutputArea-output", has_text="l2_norm: visible tests passed")
        passed.wait_for(timeout=180_000)
        failing = page.locator(".jp-OutputArea-output", has_text="NotImplementedError")
        failing.first.wait_for(timeout=180_000)  # the untouched exercises fail visibly
        passed.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "student-visible-tests.png"))
        page.get_by_role("button", name="Validate").first.click()   # saves the notebook, then validates it
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(timeout=180_000)
        page.wait_for_function("document.querySelector('.jp-Dialog').innerText.length > 40", timeout=180_000)
        text = dialog.inner_text()
        page.screenshot(path=str(ARTIFACTS / "student-validate.png"))
        assert "NotImplementedError" in text or "failed" in text.lower(), text[:2000]
    finally:
        lab.stop()
    saved = nbformat.read(home / f"{A}.ipynb", as_version=4)
    assert "(x * x).sum(dim).sqrt()" in next(c.source for c in saved.cells if grade_id(c) == "l2_norm")


def test_instructor_sees_autograded_submissions_in_formgrader(browser, course):
    answers = course.solutions(A)
    course.submit("ada", A, answers)
    course.submit("grace", A, {})
    course.nbgrader("autograde", A)
    lab = Lab(course.root)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(lab.url("formgrader"))
        page.wait_for_selector(f"text={A}", timeout=120_000)
        page.goto(lab.url(f"formgrader/manage_submissions/{A}"))
        page.wait_for_selector("text=ada", timeout=60_000)
        page.wait_for_selector("text=grace", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "formgrader-submissions.png"))
        rows = page.locator("tr").all_inner_texts()
        total = sum(float(c.metadata.nbgrader.points) for c in course.release(A).cells if is_test_cell(c))
        assert any("ada" in r and f"{total:g} / {total:g}" in r and "graded" in r for r in rows), rows
        assert any("grace" in r and f"0 / {total:g}" in r for r in rows), rows
    finally:
        lab.stop()


def test_report_renders_as_a_readable_image(browser, graded_course):
    """The item-analysis report, opened in the browser and captured as a PNG, is not blank."""
    from PIL import Image

    from mfml_grader import course, item_analysis

    root, _ = graded_course
    index = item_analysis.write(root, root / "reports")
    page = browser.new_page(viewport={"width": 1000, "height": 1400})
    page.goto(index.as_uri())
    page.wait_for_selector("img")
    shot = ARTIFACTS / "report.png"
    page.screenshot(path=str(shot), full_page=False)
    pixels = numpy.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20, "the rendered report is blank"
    assert page.locator("img").count() >= 3 * len(course.assignments(REPO)) and page.locator("h2", has_text="ps1_linear_algebra").count() == 1


def _feedback_subject(root):
    """(assignment, student) of a graded mutant whose feedback has a mistake explaining several checks and a failing visible test."""
    from mfml_grader import course, validate

    for assignment in ("ps6_mini_gpt", *course.assignments(REPO)):
        for student, (_, _, kind) in validate.plan(REPO, assignment).items():
            cells = course.test_cell_results(root, assignment, student) if kind == "mutants" else {}
            repeated = any(len(titles) >= 2 for r in cells.values() if r.report for titles in r.report.mistakes.values())
            if repeated and any(r.visible_error for r in cells.values()):
                return assignment, student
    raise AssertionError("no graded mutant has a mistake that explains two checks and a failing visible test")


def test_feedback_page_is_readable(browser, graded_course):
    """A feedback page in a narrow window: no line cut off, each mistake named once per cell, no bare score."""
    root, _ = graded_course
    assignment, student = _feedback_subject(root)
    subprocess.run(["nbgrader", "generate_feedback", assignment, f"--student={student}", "--force"], cwd=root,
                   env=nbgrader_env(), check=True, capture_output=True)
    (page_file,) = (root / "feedback" / student / assignment).glob("*.html")
    page = browser.new_page(viewport={"width": 900, "height": 1200})
    page.goto(page_file.as_uri())
    page.wait_for_selector("div.mfml-report")
    page.screenshot(path=str(ARTIFACTS / "feedback.png"), full_page=True)
    cut = page.evaluate("""() => [...document.querySelectorAll('pre, div.output_subarea, div.mfml-report')]
        .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText.slice(0, 80))""")
    assert not cut, f"lines cut off at the right edge: {cut}"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
    reports = page.locator("div.mfml-report")
    assert reports.count() >= 5, "every test cell shows its hidden-test report"
    assert 'class="mfml' not in page.inner_text("body"), "the report's markup shows as text (a tag the sanitiser refuses)"
    for i in range(reports.count()):
        lines = reports.nth(i).locator("div.mfml-mistake").all_inner_texts()
        names = [line.split(".")[0] for line in lines]
        assert len(names) == len(set(names)), f"a mistake is named twice in one cell: {lines}"
        assert reports.nth(i).inner_text().count("Likely mistake") == len(lines)
    assert page.locator("div.mfml-mistake", has_text=re.compile(r"explains \d+ failing checks")).count() >= 1, "a mistake that explains several checks says which"
    bare = page.evaluate(r"""() => [...document.querySelectorAll('div.output_subarea')]
        .map(e => e.innerText.trim()).filter(t => /^-?[0-9.]+$/.test(t))""")
    assert not bare, f"bare scores shown after the reports: {bare}"
    assert page.locator("div.output_error, div.output_stderr").count() >= 1, "the failing visible test is shown"
