"""Continuous grading (`python -m mfml_grader serve`) with nbgrader's real exchange commands.

Students fetch, fill and `nbgrader submit` ps1 from their own home folders; the service (a real
subprocess with warm grading processes) grades each submission and releases its feedback, which
`nbgrader fetch_feedback` brings back. Checked: the named mistake, then full marks, the limit's
refusal, a folder made for another student, a burst graded in parallel, a restart while grading,
the trusted time and late penalty, and which submission counts (`last` by the due date, `best`).
"""

import concurrent.futures
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import nbformat
import pytest
from nbgrader.utils import notebook_hash
from sqlalchemy import create_engine, text

from course_fixture import COURSE, Course, nbgrader_env, student_nbgrader
from mfml_grader import cli, submissions
from mfml_grader.gradebook import db_url, open_gradebook

A = "ps1_linear_algebra"
FEEDBACK_SECONDS = 120     # a bound, not a speed target: the first submission waits for the graders to start


class Served:
    """A course with ps1 released to its own exchange, and students who submit to it."""

    def __init__(self, base, settings=""):
        self.base = base
        self.course = Course.copy_of_repo(base / "course")
        with open(self.course.root / "nbgrader_config.py", "a") as config:
            config.write(f"\nc.GradingService.poll_seconds = 0.05\n{settings}\n")
        self.exchange = self.course.root / "exchange"
        self.exchange.mkdir(mode=0o777)
        self.course.nbgrader("generate_assignment", A)
        self.course.nbgrader("release_assignment", A)
        self.inbound = self.exchange / COURSE / "inbound"
        self.service = None

    def start(self):
        self.log = open(self.base / "serve.log", "a")
        self.service = subprocess.Popen([sys.executable, "-m", "mfml_grader", "serve", "--jobs", "2"], cwd=self.course.root,
                                        env=nbgrader_env(), stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self, sig=signal.SIGTERM):
        self.service.send_signal(sig)
        self.service.wait(timeout=60)
        self.log.close()

    def once(self):
        result = subprocess.run([sys.executable, "-m", "mfml_grader", "serve", "--once", "--jobs", "2"], cwd=self.course.root,
                                env=nbgrader_env(), capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    def log_text(self):
        return (self.base / "serve.log").read_text()

    def submit(self, student, kind):
        """Fetch ps1 (once), answer as `kind` (a demo student, or "perfect"), submit; returns the inbound folder."""
        home = self.base / student
        if not home.exists():
            home.mkdir()
            student_nbgrader(home, self.exchange, "fetch_assignment", A)
        path = home / A / f"{A}.ipynb"
        answers = self.course.solutions(A) if kind == "perfect" else cli.demo_answers(kind, A, self.course.root)
        nbformat.write(submissions.fill(self.course.release(A), answers), path)    # every submission from the release
        before = set(self.inbound.glob(f"{student}+*"))
        student_nbgrader(home, self.exchange, "submit", A, f"--student={student}")
        (folder,) = set(self.inbound.glob(f"{student}+*")) - before
        return folder

    def feedback(self, student, count, seconds=FEEDBACK_SECONDS):
        """The text of the student's `count`-th feedback page (by submission), fetched with nbgrader once it is released."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            student_nbgrader(self.base / student, self.exchange, "fetch_feedback", A, f"--student={student}")
            pages = sorted((self.base / student / A / "feedback").glob("*/*.html"))
            if len(pages) >= count:
                return _text(pages[count - 1].read_text())
            assert self.service is None or self.service.poll() is None, self.log_text()[-3000:]
            time.sleep(1.0)
        raise AssertionError(f"no feedback #{count} for {student} within {seconds} s:\n{self.log_text()[-3000:]}")

    def grade(self, student):
        """(score after late penalty, late penalty) the gradebook holds for the student's ps1."""
        with open_gradebook(self.course.root) as gradebook:
            submission = gradebook.find_submission(A, student)
            return round(submission.score - submission.late_submission_penalty, 4), submission.late_submission_penalty

    def attempts(self, student):
        with create_engine(db_url(self.course.root)).connect() as connection:
            rows = connection.execute(text("SELECT folder, status, score FROM mfml_attempts WHERE student = :s ORDER BY id"), {"s": student})
            return [tuple(row) for row in rows]

    def counted(self, student):
        with create_engine(db_url(self.course.root)).connect() as connection:
            return connection.execute(text("SELECT attempt FROM mfml_counted WHERE student = :s"), {"s": student}).scalar()


def _text(page):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    served = Served(tmp_path_factory.mktemp("serve"), "c.GradingService.max_graded = 2")
    served.start()
    yield served
    served.stop()


def test_mistake_named_then_full_marks_then_the_limit(served):
    served.submit("ana", "typical_mistakes")
    first = served.feedback("ana", 1)
    assert "mistake: no 1/√d_k scaling" in first and f"{A} (Score: 7.0 / 17.0)" in first, first[:3000]
    assert served.grade("ana") == (7.0, 0.0)

    served.submit("ana", "perfect")
    assert f"{A} (Score: 17.0 / 17.0)" in served.feedback("ana", 2)
    assert served.grade("ana") == (17.0, 0.0)

    served.submit("ana", "typical_mistakes")                   # a third within the hour: over the limit of 2
    refused = served.feedback("ana", 3, seconds=30)
    assert "Not graded: you already have 2 graded submissions of ps1_linear_algebra in the last 60 minutes" in refused
    assert served.grade("ana") == (17.0, 0.0), "a refused submission changed the grade"
    assert [status for _, status, _ in served.attempts("ana")] == ["graded", "graded", "refused"]
    kept = list((served.course.root / "service" / "attempts").iterdir())
    assert len(kept) == 2, f"a refused submission is not copied: {kept}"


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder owned by another user needs root")
def test_a_folder_made_for_another_student_is_ignored(served):
    folder = served.submit("cy", "perfect")
    forged = served.inbound / folder.name.replace("cy+", "dee+", 1)
    shutil.copytree(folder, forged)
    for path in [forged, *forged.rglob("*")]:
        os.lchown(path, 65534, 65534)                          # made by another user (nobody), named for dee
    served.feedback("cy", 1)
    deadline = time.monotonic() + 30
    while "ignored dee+" not in served.log_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert re.search(r"ignored dee\+.*made by \S+, not by dee", served.log_text()), served.log_text()[-2000:]
    assert served.attempts("dee") == []


def test_links_in_the_exchange_are_not_followed(served):
    """A folder that is a link, and a notebook that is a link to the instructor's solution: neither is read."""
    secret = "ab" * 64
    solution = served.course.root / "source" / A
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    (served.inbound / f"eve+{A}+{stamp}+link").symlink_to(solution, target_is_directory=True)
    folder = served.inbound / f"eve+{A}+{stamp}+note"
    folder.mkdir()
    (folder / f"{A}.ipynb").symlink_to(solution / f"{A}.ipynb")
    (folder / "submission_secret.txt").write_text(secret)
    page = served.exchange / COURSE / "feedback" / f"{notebook_hash(secret=secret, notebook_id=A)}.html"
    deadline = time.monotonic() + FEEDBACK_SECONDS
    while not page.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"could not be graded: no {A}.ipynb in the submission" in _text(page.read_text())
    assert served.grade("eve") == (0.0, 0.0)
    assert [row[1:] for row in served.attempts("eve")] == [("graded", 0.0)]
    assert re.search(rf"ignored eve\+{A}\+.*\+link: not a folder", served.log_text())
    assert "not read: `ps1_linear_algebra.ipynb` is a symbolic link" in served.log_text()


def test_a_burst_is_graded_in_parallel(served):
    students = [f"burst{i}" for i in range(4)]
    with concurrent.futures.ThreadPoolExecutor(len(students)) as pool:
        list(pool.map(lambda student: served.submit(student, "perfect"), students))
    for student in students:
        assert f"{A} (Score: 17.0 / 17.0)" in served.feedback(student, 1)
        assert served.grade(student) == (17.0, 0.0)
    spans = [(float(start), float(start) + float(seconds)) for start, seconds in
             re.findall(r"^burst\d\t(\S+)\t(\S+)$", (served.course.root / "logs" / "serve-spans.tsv").read_text(), re.M)]
    assert any(a[0] < b[1] and b[0] < a[1] for a in spans for b in spans if a is not b), f"no two gradings overlapped: {spans}"


def test_a_restart_while_grading_loses_and_repeats_nothing(served):
    folder = served.submit("kim", "perfect")
    deadline = time.monotonic() + 30
    while "took kim/" not in served.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    served.stop(signal.SIGKILL)                                # mid-grading: taken, not graded
    assert served.attempts("kim") == [(folder.name, "taken", None)]
    served.start()
    assert f"{A} (Score: 17.0 / 17.0)" in served.feedback("kim", 1)
    assert served.attempts("kim") == [(folder.name, "graded", 17.0)]
    assert served.log_text().count("took kim/") == 1


def test_the_last_by_the_due_date_counts_with_the_service_time(tmp_path):
    served = Served(tmp_path)
    served.submit("lee", "perfect")
    served.once()
    time.sleep(1.1)
    due = datetime.datetime.now(datetime.timezone.utc)
    served.course.nbgrader("db", "assignment", "add", A, f"--duedate={due:%Y-%m-%d %H:%M:%S.%f} UTC")
    time.sleep(1.1)
    late = served.submit("lee", "typical_mistakes")
    early = (due - datetime.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    (late / "timestamp.txt").write_text(early)                 # claims a day early: ignored
    os.rename(late, late.with_name("+".join(["lee", A, early, late.name.split("+")[3]])))
    served.once()
    assert "mistake: no 1/√d_k scaling" in served.feedback("lee", 2, seconds=10)
    first, second = served.attempts("lee")
    assert (first[1:], second[1]) == (("graded", 17.0), "graded") and second[2] == pytest.approx(7.0 * 0.9)
    assert served.counted("lee") == 1 and served.grade("lee") == (17.0, 0.0), "the on-time submission should count"


def test_restarts_on_a_postgresql_gradebook(tmp_path):
    """The service's rows beside nbgrader's on a PostgreSQL server: two runs, each attempt taken and graded once."""
    import servers

    with servers.postgres(tmp_path / "postgres") as url:
        served = Served(tmp_path, f"c.CourseDirectory.db_url = {url!r}")
        first = served.submit("noa", "typical_mistakes")
        served.once()
        second = served.submit("noa", "perfect")
        served.once()
        assert served.attempts("noa") == [(first.name, "graded", 7.0), (second.name, "graded", 17.0)]
        assert served.counted("noa") == 2 and served.grade("noa") == (17.0, 0.0)


def test_the_best_counts_after_late_penalties(tmp_path):
    served = Served(tmp_path, 'c.GradingService.counts = "best"')
    served.submit("mia", "perfect")
    served.submit("mia", "typical_mistakes")
    if os.geteuid() == 0:   # a course another user owns (a hub's instructor): what grading writes becomes theirs
        os.chown(served.course.root, 65534, 65534)
    served.once()
    assert [row[2] for row in served.attempts("mia")] == [17.0, 7.0]
    assert served.counted("mia") == 1 and served.grade("mia") == (17.0, 0.0)
    if os.geteuid() == 0:
        written = [served.course.root / top / "mia" / A for top in ("submitted", "autograded", "feedback")]
        owners = {path: path.stat().st_uid for folder in written for path in [folder, *folder.rglob("*")]}
        assert set(owners.values()) == {65534}, owners
