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
from pathlib import Path

import pytest

import hub_fixture
from course_fixture import ARTIFACTS, REPO
from hub_fixture import skip_reason
from mfml_grader import hub as course_hub

A = "ps1_linear_algebra"
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
