"""A real multi-user course hub on loopback for the tests (`python -m mfml_grader hub`, mfml_grader/hub.py).

`running_hub()` starts one with a user prefix of its own (`mfmlt<6 hex>-`), its own state folder
under /tmp (reachable by the hub's users, unlike pytest's private tmp folders) and a free port, and
always takes it down again: the hub and its single-user servers stopped, its users, group and
folders removed (`hub-clean`), even when a test or the start failed. It skips, saying why, when not
root, when the system programs are missing, or when other users cannot run the course environment.
"""

import contextlib
import io
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from course_fixture import REPO
from mfml_grader import hub as course_hub
from servers import free_port


@dataclass
class RunningHub:
    url: str
    prefix: str
    logins: dict          # {user: password}
    instructor: str
    students: list
    course_dir: Path
    exchange: Path
    state: Path
    venv: Path
    log: Path

    def home(self, user):
        return Path(pwd.getpwnam(user).pw_dir)


def skip_reason():
    """Why a hub cannot run here, or ''. Installs configurable-http-proxy (`make hub-proxy`) when missing."""
    if os.geteuid() != 0:
        return "the course hub needs root (it creates unix users)"
    missing = course_hub.missing_tools()
    if missing:
        return f"system programs missing: {', '.join(missing)}"
    if not course_hub.PROXY.exists():
        done = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "hub-proxy"], capture_output=True, text=True, timeout=900)
        if done.returncode != 0 or not course_hub.PROXY.exists():
            return f"configurable-http-proxy could not be installed (make hub-proxy): {(done.stdout + done.stderr)[-500:]}"
    return course_hub.environment_problem(sys.prefix)


def _leftover_users(prefix):
    return [entry.pw_name for entry in pwd.getpwall() if entry.pw_name.startswith(prefix)]


@contextlib.contextmanager
def running_hub(log_dir, students=2, assignments=("ps1_linear_algebra",), grader=False, max_graded=None, start_seconds=600):
    """A course hub for the duration of the block; yields a RunningHub."""
    reason = skip_reason()
    if reason:
        pytest.skip(f"no course hub: {reason}")
    prefix = f"mfmlt{secrets.token_hex(3)}-"
    state = Path(tempfile.mkdtemp(prefix=f"{prefix}hub-", dir="/tmp"))
    port = free_port()
    log_path = Path(log_dir) / "hub.log"
    command = [sys.executable, "-m", "mfml_grader", "hub", "--state", str(state), "--prefix", prefix, "--port", str(port),
               "--students", str(students), *([] if grader else ["--no-grader"]),
               *([] if max_graded is None else ["--max-graded", str(max_graded)]), "--assignments", *assignments]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + start_seconds
        while not course_hub.hub_is_up(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the course hub did not start ({process.returncode}):\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        layout = course_hub.Layout(state, prefix, students)
        yield RunningHub(url=url, prefix=prefix, logins=json.loads(layout.logins_file.read_text()), instructor=layout.instructor,
                         students=layout.student_names, course_dir=layout.course_dir, exchange=layout.exchange, state=state,
                         venv=Path(sys.prefix), log=log_path)
    finally:
        _take_down(process, state, prefix)


def _take_down(process, state, prefix):
    """Stop the hub (it stops its servers), remove its users and folders; say what could not be removed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)   # `hub` stops JupyterHub as Ctrl-C does
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    if (state / "hub" / "created.json").exists():
        course_hub.clean(state, out=io.StringIO())
    shutil.rmtree(state, ignore_errors=True)
    left = _leftover_users(prefix)
    for user in left:   # the prefix is this run's own: nobody else's users
        subprocess.run(["userdel", "--force", user], capture_output=True)
    assert not left, f"hub-clean left users behind: {left}"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A course hub (2 students, ps1_linear_algebra released, the grading service with a limit of 2 graded
    submissions per hour) shared by a module's tests."""
    with running_hub(tmp_path_factory.mktemp("hub"), grader=True, max_graded=2) as running:
        yield running
