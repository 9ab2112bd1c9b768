"""The student and instructor paths in a real browser: JupyterLab with nbgrader's extensions, driven
in headless Chromium by Playwright. Screenshots go to test-artifacts/ (ignored by git).
"""

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

from course_fixture import REPO, Course, nbgrader_env

ARTIFACTS = REPO / "test-artifacts"
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
        page.keyboard.press("Control+s")
        page.get_by_role("button", name="Validate").first.click()
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(timeout=180_000)
        page.wait_for_function("document.querySelector('.jp-Dialog').innerText.length > 40", timeout=180_000)
        text = dialog.inner_text()
        page.screenshot(path=str(ARTIFACTS / "student-validate.png"))
        assert "NotImplementedError" in text or "failed" in text.lower(), text[:2000]
    finally:
        lab.stop()
    saved = nbformat.read(home / f"{A}.ipynb", as_version=4)
    assert "(x * x).sum(dim).sqrt()" in next(c.source for c in saved.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "l2_norm")


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
        assert any("ada" in r and "14 / 14" in r and "graded" in r for r in rows), rows
        assert any("grace" in r and "0 / 14" in r for r in rows), rows
    finally:
        lab.stop()


def test_report_renders_as_a_readable_image(browser, graded_course):
    """The item-analysis report, opened in the browser and captured as a PNG, is not blank."""
    from PIL import Image

    from mfml_grader import report

    root, _ = graded_course
    index = report.write(root, root / "reports")
    page = browser.new_page(viewport={"width": 1000, "height": 1400})
    page.goto(index.as_uri())
    page.wait_for_selector("img")
    shot = ARTIFACTS / "report.png"
    page.screenshot(path=str(shot), full_page=False)
    pixels = numpy.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20, "the rendered report is blank"
    assert page.locator("img").count() >= 21 and page.locator("h2", has_text="ps1_linear_algebra").count() == 1
