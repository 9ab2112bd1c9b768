"""The whole exchange life cycle with nbgrader's filesystem exchange, in a folder the test owns:
release_assignment -> fetch_assignment (as students) -> submit -> collect -> autograde ->
generate_feedback -> release_feedback -> fetch_feedback; one submission late under the course's
late policy (10 % of the earned score per started day, mfml_grader/late.py). The submission time is
the exchange's (mfml_grader/intake.py): a student who forges the time in the folder name and in
timestamp.txt, or deletes timestamp.txt, changes nothing.
"""

import csv
import datetime
import os
import time

import nbformat
import pytest

from course_fixture import COURSE, Course, student_nbgrader
from mfml_grader import submissions

A = "ps4_information_theory"
DAY = datetime.timedelta(days=1)


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory):
    base = tmp_path_factory.mktemp("lifecycle")
    (base / "course").mkdir()
    instructor = Course.copy_of_repo(base / "course")
    exchange = instructor.root / "exchange"
    exchange.mkdir(mode=0o777)
    instructor.nbgrader("generate_assignment", A)
    instructor.nbgrader("release_assignment", A)
    inbound = exchange / COURSE / "inbound"

    for student in ("alice", "bob"):
        if student == "bob":  # the due date passes between alice's submission and bob's
            time.sleep(1.1)
            due = datetime.datetime.now(datetime.timezone.utc)
            instructor.nbgrader("db", "assignment", "add", A, f"--duedate={due:%Y-%m-%d %H:%M:%S.%f} UTC")
            time.sleep(1.1)
        home = base / student
        home.mkdir()
        student_nbgrader(home, exchange, "fetch_assignment", A)
        path = home / A / f"{A}.ipynb"
        nbformat.write(submissions.fill(nbformat.read(path, as_version=4), instructor.solutions(A)), path)
        student_nbgrader(home, exchange, "submit", A, f"--student={student}")
        if student == "alice":  # alice deletes her timestamp.txt (before the due date)
            (alices,) = [p for p in inbound.iterdir() if p.name.startswith("alice+")]
            (alices / "timestamp.txt").unlink()

    # bob claims to have submitted a day before the due date, in the folder name and in timestamp.txt
    (bobs,) = [p for p in inbound.iterdir() if p.name.startswith("bob+")]
    early = (due - DAY).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    name = bobs.name.split("+")
    forged = inbound / "+".join([name[0], name[1], early, *name[3:]])
    os.rename(bobs, forged)
    (forged / "timestamp.txt").write_text(early)

    instructor.nbgrader("collect", A)
    instructor.nbgrader("autograde", A)
    instructor.nbgrader("generate_feedback", A)
    instructor.nbgrader("release_feedback", A)
    for student in ("alice", "bob"):
        student_nbgrader(base / student, exchange, "fetch_feedback", A, f"--student={student}")
    return base, instructor


def test_collected_submissions_are_graded(lifecycle):
    _, instructor = lifecycle
    for student in ("alice", "bob"):
        scores = instructor.scores(A, student)
        assert scores and all(s == m for s, m in scores.values()), f"{student}: {scores}"


def test_late_policy_takes_ten_percent_per_started_day_by_the_exchanges_clock(lifecycle):
    from mfml_grader.gradebook import open_gradebook

    _, instructor = lifecycle
    with open_gradebook(instructor.root) as gradebook:
        alice, bob = (gradebook.find_submission(A, s) for s in ("alice", "bob"))
        assert alice.late_submission_penalty == 0 and alice.score == alice.max_score
        assert 0 < bob.total_seconds_late < 600, "the exchange's time, not the forged one"
        assert bob.late_submission_penalty == pytest.approx(0.1 * bob.max_score)
        assert bob.score - bob.late_submission_penalty == pytest.approx(0.9 * bob.max_score)
    instructor.nbgrader("export", f"--CsvExportPlugin.to={instructor.root / 'grades.csv'}")
    rows = {r["student_id"]: r for r in csv.DictReader(open(instructor.root / "grades.csv"))}
    assert float(rows["bob"]["late_submission_penalty"]) == pytest.approx(0.7)
    assert float(rows["bob"]["score"]) == pytest.approx(6.3) and float(rows["alice"]["score"]) == 7


def test_students_fetch_their_feedback(lifecycle):
    base, _ = lifecycle
    for student in ("alice", "bob"):
        pages = list((base / student / A / "feedback").rglob("*.html"))
        assert len(pages) == 1, f"{student} fetched {pages}"
        text = pages[0].read_text()
        assert "Hidden tests for entropy" in text and "Hidden tests for perplexity" in text
