"""A throwaway copy of the course in which tests run real nbgrader commands."""

import subprocess
import sys
from pathlib import Path

import nbformat

from mfml_grader import course, submissions
from mfml_grader.judge.batch import nbgrader_env

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"   # the browser tests' screenshots (ignored by git)
COURSE = "math-foundations-ml"


class Course:
    """A course directory with nbgrader commands and readers for what grading produced."""

    def __init__(self, root):
        self.root = Path(root)

    @classmethod
    def copy_of_repo(cls, root):
        return cls(course.copy_course(REPO, root))

    def nbgrader(self, *args):
        result = subprocess.run(["nbgrader", *args], cwd=self.root, env=nbgrader_env(), capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
        return result

    def release(self, assignment):
        return nbformat.read(course.release_notebook(assignment, self.root), as_version=4)

    def solutions(self, assignment):
        return submissions.answers_from_source(nbformat.read(course.source_notebook(assignment, self.root), as_version=4))

    def submit(self, student, assignment, answers):
        """Write a submission: the release's files, and its notebook with `answers` in its solution cells."""
        submissions.submit(self.root, assignment, student, answers)

    def scores(self, assignment, student):
        """{function: (score, max)} for every test cell of a graded submission."""
        return course.test_cell_scores(self.root, assignment, student)


def submit_batch(root, assignments, students, db_url=None):
    """A fresh course copy at `root` (its gradebook at `db_url` if given) with every student's submission
    of `assignments` released and submitted: the demo students' answers, and the solutions for the others."""
    from mfml_grader import cli

    course = Course.copy_of_repo(root)
    if db_url:
        with open(course.root / "nbgrader_config.py", "a") as config:
            config.write(f"\nc.CourseDirectory.db_url = {db_url!r}\n")
    for assignment in assignments:
        course.nbgrader("generate_assignment", assignment, "--force")
        for student in students:
            kind = student if student in cli.DEMO_STUDENTS else "perfect"
            course.submit(student, assignment, cli.demo_answers(kind, assignment, course.root) or {})
    return course


def autograde(course, assignments, *options, env=None):
    """Run `python -m mfml_grader autograde` on the course (a subprocess, in `env` plus this Python's
    scripts on PATH); returns its CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "mfml_grader", "autograde", *options, *assignments],
                          cwd=course.root, env=nbgrader_env(**(env or {})), capture_output=True, text=True, timeout=1800)


def batch_scores(course, assignments, students):
    """{(assignment, student): {function: (score, max)}}."""
    return {(a, s): course.scores(a, s) for a in assignments for s in students}


def student_nbgrader(home, exchange, *args):
    """A student's nbgrader command: in their own home folder, with only the exchange in common."""
    result = subprocess.run(["nbgrader", *args, f"--course={COURSE}", f"--Exchange.root={exchange}"],
                            cwd=home, env=nbgrader_env(HOME=str(home)), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result
