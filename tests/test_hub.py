"""The course hub (`make hub`): real unix users log in to a JupyterHub on loopback, students fetch the
assignment from nbgrader's shared exchange, only the instructor has formgrader; `hub-clean` removes
exactly what the hub created. Browser steps in headless Chromium (Playwright), screenshots in
test-artifacts/.
"""

import grp
import os
import pwd
import secrets
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import nbformat
import pytest

import hub_fixture
from course_fixture import ARTIFACTS, REPO
from hub_fixture import skip_reason
from mfml_grader import hub as course_hub
from mfml_grader import submissions
from mfml_grader.course import grade_id

A = "ps1_linear_algebra"
FEEDBACK_BOUND = 90   # seconds from Submit to released feedback: a bound for the test, not a speed target (make bench)
hub = hub_fixture.hub   # the fixture: a running course hub, shared by this module's tests


def _owner(path):
    return pwd.getpwuid(Path(path).stat().st_uid).pw_name


def test_users_group_course_and_exchange(hub):
    group = grp.getgrnam(f"{hub.prefix}course")
    assert sorted(group.gr_mem) == sorted([hub.instructor, *hub.students])
    for user in (hub.instructor, *hub.students):
        assert user.startswith(hub.prefix)
        home = hub.home(user)
        assert home.parent == hub.state / "home" and _owner(home) == user
        assert stat.S_IMODE(home.stat().st_mode) == 0o700, "a student cannot read another's home (nor the instructor's course)"
    mode = hub.exchange.stat().st_mode
    assert stat.S_IMODE(mode) == 0o1777, f"the exchange root is world-writable with the sticky bit, not {oct(mode)}"
    released = hub.exchange / "math-foundations-ml" / "outbound" / A / f"{A}.ipynb"
    assert released.exists(), "the instructor released the assignment into the exchange"
    assert (hub.exchange / "math-foundations-ml" / "inbound").is_dir()
    assert _owner(hub.course_dir) == hub.instructor and _owner(hub.course_dir / "gradebook.db") == hub.instructor
    assert (hub.course_dir / "source" / A / f"{A}.ipynb").exists() and (hub.course_dir / "grader_tests").is_dir()
    student_config = (hub.home(hub.students[0]) / ".jupyter" / "nbgrader_config.py").read_text()
    assert "math-foundations-ml" in student_config and str(hub.exchange) in student_config


def test_a_student_runs_the_course_environment(hub):
    done = subprocess.run(["runuser", "-u", hub.students[0], "--", str(hub.venv / "bin" / "python"), "-c",
                           "import torch, nbgrader, jupyterhub.singleuser, mfml_grader; print(torch.ones(2).sum().item())"],
                          cwd="/", capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "2.0", done.stderr[-2000:]
    for secret in (REPO / "source" / A / f"{A}.ipynb", REPO / "grader_tests" / f"test_{A}.py", REPO / ".git" / "HEAD"):
        peek = subprocess.run(["runuser", "-u", hub.students[0], "--", "cat", str(secret)], cwd="/", capture_output=True, text=True)
        assert peek.returncode != 0 and "Permission denied" in peek.stderr, f"a student reads {secret}"


def _log_in(browser, hub, user):
    """A browser page of `user`, logged in through the hub's login form, in JupyterLab."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{hub.url}hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", hub.logins[user])
    page.click("#login_submit")
    page.wait_for_url(f"**/user/{user}/lab**", timeout=180_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=180_000)
    return page


def _nbgrader_menu(page):
    page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
    return page.locator("#jp-mainmenu-nbgrader")


def test_a_student_fetches_and_opens_the_assignment(browser, hub):
    student = hub.students[0]
    page = _log_in(browser, hub, student)
    _nbgrader_menu(page).get_by_text("Assignment List", exact=True).click()
    released = page.locator("#released_assignments_list .list_item", has_text=A)
    released.wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "hub-student-assignments.png"))
    released.get_by_role("button", name="Fetch").click()
    fetched = page.locator("#fetched_assignments_list", has_text=A)
    fetched.wait_for(timeout=60_000)
    assert (hub.home(student) / A / f"{A}.ipynb").exists(), "fetched into the student's home"
    fetched.locator(".assignment-notebooks-link").first.click()
    fetched.get_by_role("link", name=A, exact=True).click()
    page.get_by_role("tab", name=f"{A}.ipynb").wait_for(timeout=30_000)
    page.locator(".jp-Notebook .jp-Cell", has_text="def l2_norm").first.wait_for(timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status=idle]", timeout=120_000)   # its kernel runs, as the student
    page.screenshot(path=str(ARTIFACTS / "hub-student-notebook.png"))
    page.context.close()


def test_the_instructor_has_formgrader(browser, hub):
    page = _log_in(browser, hub, hub.instructor)
    menu = _nbgrader_menu(page)
    assert menu.get_by_text("Formgrader", exact=True).is_visible()
    page.goto(f"{hub.url}user/{hub.instructor}/formgrader/manage_assignments")
    page.wait_for_selector("text=Manage Assignments", timeout=60_000)
    row = page.locator("tr", has_text=A)
    row.first.wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "hub-instructor-formgrader.png"))
    page.context.close()


def test_a_student_has_no_formgrader(browser, hub):
    student = hub.students[-1]
    page = _log_in(browser, hub, student)
    menu = _nbgrader_menu(page)
    menu.get_by_text("Assignment List", exact=True).wait_for(timeout=30_000)
    assert menu.get_by_text("Formgrader", exact=True).count() == 0
    page.keyboard.press("Escape")
    answer = page.goto(f"{hub.url}user/{student}/formgrader")
    assert answer.status == 404
    page.context.close()


def _assignment_list(page):
    _nbgrader_menu(page).get_by_text("Assignment List", exact=True).click()
    page.locator("#released_assignments_list").wait_for(timeout=60_000)


def _edit_l2_norm(page, body):
    """Type `body` as l2_norm's solution in the open notebook and save it."""
    page.get_by_role("tab", name=f"{A}.ipynb").click()
    cell = page.locator(".jp-CodeCell", has_text="def l2_norm").first
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.type(f"def l2_norm(x, dim=-1):\n{body}")   # the editor indents
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")


def _submit_and_read_feedback(page, hub, student, saved, shot):
    """Submit from the Assignment List once l2_norm on disk ends with `saved`; refresh until the feedback is
    released, fetch it; returns (seconds from Submit to feedback released, the feedback page's text in the browser)."""
    notebook = hub.home(student) / A / f"{A}.ipynb"

    def solution():
        return next(cell.source for cell in nbformat.read(notebook, as_version=4).cells if grade_id(cell) == "l2_norm").strip()

    deadline = time.monotonic() + 60
    while not solution().endswith(saved) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert solution().endswith(saved), f"the notebook was not saved: {solution()}"
    _assignment_list(page)
    feedback_dir = hub.home(student) / A / "feedback"
    before = set(feedback_dir.iterdir()) if feedback_dir.exists() else set()
    page.locator("#fetched_assignments_list .list_item", has_text=A).get_by_role("button", name="Submit").click()
    submitted = time.monotonic()
    available = page.locator("#submitted_assignments_list", has_text="(feedback available to fetch)")
    while not available.count():
        assert time.monotonic() - submitted < FEEDBACK_BOUND, f"no feedback within {FEEDBACK_BOUND} s:\n{hub.log.read_text()[-3000:]}"
        page.locator("#refresh_assignments_list").click()
        time.sleep(0.5)
    seconds = time.monotonic() - submitted
    page.locator("#submitted_assignments_list .list_item", has_text=A).get_by_role("button", name="Fetch Feedback").first.click()
    deadline = time.monotonic() + 60
    while not (set(feedback_dir.iterdir()) - before if feedback_dir.exists() else None) and time.monotonic() < deadline:
        time.sleep(0.2)
    (new,) = set(feedback_dir.iterdir()) - before
    viewer = page.context.new_page()
    viewer.goto(f"{hub.url}user/{student}/files/{A}/feedback/{urllib.parse.quote(new.name)}/{A}.html")
    text = viewer.inner_text("body")
    viewer.screenshot(path=str(ARTIFACTS / shot))
    viewer.close()
    return seconds, text


def test_a_student_gets_graded_feedback_within_seconds(browser, hub):
    """Fetch ps1, write l2_norm wrong, submit, read the named mistake; fix it, full marks; past the limit, refused.
    The instructor sees the graded submissions in formgrader."""
    student, other = hub.students[1], hub.students[0]
    page = _log_in(browser, hub, student)
    _assignment_list(page)
    page.locator("#released_assignments_list .list_item", has_text=A).get_by_role("button", name="Fetch").click()
    fetched = page.locator("#fetched_assignments_list", has_text=A)
    fetched.wait_for(timeout=60_000)
    notebook = hub.home(student) / A / f"{A}.ipynb"   # the other exercises, done before: the course's solutions
    source = nbformat.read(hub.course_dir / "source" / A / f"{A}.ipynb", as_version=4)
    answers = {name: code for name, code in submissions.answers_from_source(source).items() if name != "l2_norm"}
    nbformat.write(submissions.fill(nbformat.read(notebook, as_version=4), answers), notebook)
    os.chown(notebook, pwd.getpwnam(student).pw_uid, pwd.getpwnam(student).pw_gid)
    fetched.locator(".assignment-notebooks-link").first.click()
    fetched.get_by_role("link", name=A, exact=True).click()
    page.locator(".jp-Notebook .jp-Cell", has_text="def l2_norm").first.wait_for(timeout=120_000)

    _edit_l2_norm(page, "return (x * x).sum(dim)")
    seconds, wrong = _submit_and_read_feedback(page, hub, student, "return (x * x).sum(dim)", "hub-feedback-mistake.png")
    page.screenshot(path=str(ARTIFACTS / "hub-student-feedback.png"))
    assert "missing square root" in wrong and f"{A} (Score: 17.0 / 17.0)" not in wrong, wrong[:3000]
    print(f"feedback released {seconds:.1f} s after Submit (named mistake)")

    _edit_l2_norm(page, "return (x * x).sum(dim).sqrt()")
    seconds, right = _submit_and_read_feedback(page, hub, student, "return (x * x).sum(dim).sqrt()", "hub-feedback-full-marks.png")
    assert f"{A} (Score: 17.0 / 17.0)" in right, right[:3000]
    print(f"feedback released {seconds:.1f} s after Submit (full marks)")

    _, refused = _submit_and_read_feedback(page, hub, student, "return (x * x).sum(dim).sqrt()", "hub-feedback-refused.png")   # a third
    assert f"Not graded: you already have 2 graded submissions of {A}" in refused, refused[:2000]
    page.context.close()

    home = hub.home(other)    # a second student submits the untouched notebook from the command line
    for command in (["fetch_assignment", A], ["submit", A]):
        if command[0] == "submit" or not (home / A).exists():
            course_hub.run_as(other, [hub.venv / "bin" / "nbgrader", *command], home, hub.venv, hub.exchange)
    instructor = _log_in(browser, hub, hub.instructor)
    instructor.goto(f"{hub.url}user/{hub.instructor}/formgrader/manage_submissions/{A}")
    rows = instructor.locator("tr")
    deadline = time.monotonic() + FEEDBACK_BOUND
    while not any(other in row and "0 / 17" in row for row in rows.all_inner_texts()) and time.monotonic() < deadline:
        time.sleep(1.0)
        instructor.reload()
    instructor.screenshot(path=str(ARTIFACTS / "hub-instructor-submissions.png"))
    texts = rows.all_inner_texts()
    assert any(student in row and "17 / 17" in row for row in texts), texts   # the fixed one counts, not the refused one
    assert any(other in row and "0 / 17" in row for row in texts), texts
    instructor.context.close()


def test_not_as_root_it_refuses():
    if os.geteuid() != 0 or skip_reason():
        pytest.skip("needs root and a course environment other users can run")
    done = subprocess.run(["runuser", "-u", "nobody", "--", sys.executable, "-m", "mfml_grader", "hub", "--state", "/nonexistent/hub"],
                          cwd="/", capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "run it as root" in done.stderr, done.stderr


def test_hub_clean_removes_what_the_hub_created_and_nothing_else():
    reason = skip_reason()
    if reason:
        pytest.skip(f"no course hub: {reason}")
    prefix = f"mfmlt{secrets.token_hex(3)}-"
    state = Path(tempfile.mkdtemp(prefix=f"{prefix}hub-", dir="/tmp"))
    layout = course_hub.Layout(state, prefix, students=1)
    decoy = f"{prefix}decoy"
    try:
        logins = course_hub.setup(layout, assignments=[])
        assert set(logins) == {f"{prefix}instructor", f"{prefix}student1"} and all(logins.values())
        assert all(pwd.getpwnam(user).pw_dir.startswith(str(state)) for user in logins)
        subprocess.run(["useradd", "--no-create-home", decoy], check=True)   # has the prefix, the hub did not create it
        with pytest.raises(course_hub.HubError, match="did not create"):
            course_hub.setup(_with_decoy_student(layout, decoy), assignments=[])
        course_hub.clean(state)
        left = [entry.pw_name for entry in pwd.getpwall() if entry.pw_name.startswith(prefix)]
        assert left == [decoy], left
        assert not state.exists()
        with pytest.raises(KeyError):
            grp.getgrnam(f"{prefix}course")
    finally:
        for entry in pwd.getpwall():
            if entry.pw_name.startswith(prefix):
                subprocess.run(["userdel", "--force", entry.pw_name], capture_output=True)
        subprocess.run(["groupdel", f"{prefix}course"], capture_output=True)
        subprocess.run(["rm", "-rf", str(state)])


def _with_decoy_student(layout, decoy):
    """A layout whose second student would be `decoy` (an existing user the hub did not create)."""
    class Decoy(course_hub.Layout):
        @property
        def student_names(self):
            return [*super().student_names, decoy]
    return Decoy(layout.state, layout.prefix, layout.students)


def test_the_makefile_builds_the_venv_from_a_python_every_user_can_run():
    make = subprocess.run(["make", "-n", "-B", "venv"], cwd=REPO, capture_output=True, text=True, env={**os.environ, "VENV_PYTHON": "/x/python3.11"})
    assert "/x/python3.11 -m venv" in make.stdout
    stamps = {v: subprocess.run(["make", "-n", "-p", "venv"], cwd=REPO, capture_output=True, text=True,
                                env={**os.environ, "VENV_PYTHON": v}).stdout for v in ("/a/python3", "/b/python3")}
    stamp = {v: next(line for line in out.splitlines() if line.startswith("STAMP :=")) for v, out in stamps.items()}
    assert stamp["/a/python3"] != stamp["/b/python3"], "changing VENV_PYTHON rebuilds the virtualenv"
