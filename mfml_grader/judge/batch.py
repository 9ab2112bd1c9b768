"""Batch autograding across cores: `python -m mfml_grader autograde --jobs N [assignment ...]`.

nbgrader grades one notebook after another, so this starts N grading processes, each with
nbgrader's own API (`NbGraderAPI.autograde`, the call formgrader makes) configured by the course's
nbgrader_config.py and its own warm sandbox, and hands them (assignment, student) pairs from one
queue: a process that finishes early takes the next pair, so no core idles while work is left.
One progress bar. Gradebook writes stay safe: sqlite waits for its lock (db_url `?timeout=`).
Nothing is lost: a submission whose grading failed is retried alone with plain `nbgrader
autograde`, and if it fails again it gets zero points with the reason written where the student
will read it.
"""

import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat

from .. import course

PROGRESS_ENV = "MFML_PROGRESS_FILE"
TIMES_FILE = "autograde-times.tsv"   # in logs/: assignment, student, seconds spent running the notebook


def submitted_students(root, assignment):
    folder = root / "submitted"
    return sorted(p.name for p in folder.iterdir() if (p / assignment).is_dir()) if folder.is_dir() else []


def nbgrader_env(**extra):
    """This environment, with this Python's scripts first on PATH (nbgrader runs `alembic`)."""
    env = dict(os.environ, **extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _grading_vars(threads, progress_file):
    """Environment of a grading process: torch threads per submission, where to report progress."""
    return {"MFML_THREADS": str(threads), PROGRESS_ENV: str(progress_file)}


def _retry_alone(root, assignment, student, threads, progress_file, log_file):
    """Grade one submission with a plain `nbgrader autograde` process of its own."""
    command = ["nbgrader", "autograde", assignment, f"--CourseDirectory.student_id={student}", "--force", "--log-level=WARN"]
    env = nbgrader_env(**_grading_vars(threads, progress_file))
    subprocess.run(command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT, check=False)


_api = None


def _start_grader(root, threads, progress_file, output_file):
    """Set up one grading process: nbgrader's API, configured as `nbgrader autograde` would be."""
    global _api
    os.chdir(root)
    os.environ.update(_grading_vars(threads, progress_file))
    output = os.open(output_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(output, 1)  # warnings and anything else printed go to the log, not over the progress bar
    os.dup2(output, 2)
    from nbgrader.apps import NbGraderAPI
    from nbgrader.apps.autogradeapp import AutogradeApp

    app = AutogradeApp()
    app.initialize(["--log-level=WARN"])  # reads nbgrader_config.py like the command line does
    _api = NbGraderAPI(coursedir=app.coursedir, parent=app)


def _grade(assignment, student):
    """Autograde one submission in this grading process; returns its log (warnings and errors)."""
    result = _api.autograde(assignment, student)
    lines = [line for line in result.get("log", "").splitlines() if not line.startswith(("[INFO]", "[DEBUG]"))]
    return "\n".join(lines + [result.get("error", "")]).strip()


class ProgressBar:
    """`[#######.....] 23/40 notebooks  4.1/s  ETA 4s` on one refreshed line (a line per step when not a tty)."""

    def __init__(self, total, label, out=sys.stderr):
        self.total, self.label, self.out = total, label, out
        self.started, self.shown, self.logged = time.monotonic(), -1, -1

    def show(self, done, final=False):
        if done == self.shown and not final:
            return
        self.shown = done
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f"ETA {(self.total - done) / rate:.0f}s" if rate and done < self.total else f"{elapsed:.0f}s"
        width = 30
        filled = int(width * done / self.total) if self.total else width
        line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} notebooks  {rate:.1f}/s  {eta}"
        if self.out.isatty():
            self.out.write("\r" + line + ("\n" if final else ""))
        elif final or done * 10 // max(1, self.total) != self.logged:  # a log file: a line per tenth
            self.logged = done * 10 // max(1, self.total)
            self.out.write(line + "\n")
        self.out.flush()


def _ungraded(root, pairs):
    """The (assignment, student) pairs without an autograded notebook or with a grade left unscored."""
    from nbgrader.api import Gradebook, MissingEntry

    missing = []
    with Gradebook(_db_url(root)) as gradebook:
        for assignment, student in pairs:
            try:
                notebook = gradebook.find_submission_notebook(assignment, assignment, student)
                graded = all(g.auto_score is not None or g.needs_manual_grade for g in notebook.grades)
            except MissingEntry:
                graded = False
            if not (graded and (root / "autograded" / student / assignment / f"{assignment}.ipynb").exists()):
                missing.append((assignment, student))
    return missing


def _db_url(root):
    return f"sqlite:///{root / 'gradebook.db'}?timeout=60"


def _failure_reason(root, assignment, student):
    folder = root / "submitted" / student / assignment
    expected = folder / f"{assignment}.ipynb"
    if not expected.exists():
        found = sorted(p.name for p in folder.glob("*.ipynb"))
        return f"no {assignment}.ipynb in the submission (found: {', '.join(found) or 'no notebook'}); submit the notebook under its original name"
    try:
        nbformat.read(expected, as_version=4)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same treatment
        return f"{assignment}.ipynb is not a readable notebook ({type(error).__name__}: {str(error)[:200]})"
    return "the grader could not process this notebook (its cell structure or metadata is broken); see the grading log"


def record_failure(root, assignment, student, reason):
    """Zero points with a reason: in the gradebook, and in an autograded notebook feedback can show."""
    from nbgrader.api import Gradebook

    with Gradebook(_db_url(root)) as gradebook:
        submission = gradebook.update_or_create_submission(assignment, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
        gradebook.db.commit()
    release = nbformat.read(course.release_notebook(assignment, root), as_version=4)
    notice = f"**This submission could not be graded: {reason}.** Every exercise scores 0."
    release.cells.insert(0, nbformat.v4.new_markdown_cell(notice))
    for cell in release.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            cell.outputs = [nbformat.v4.new_output("error", ename="NotGraded", evalue=reason, traceback=[f"NotGraded: {reason}"])]
    folder = root / "autograded" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(release, folder / f"{assignment}.ipynb")


def autograde(root, assignments, jobs, out=sys.stderr):
    """Grade every submission of `assignments` with `jobs` grading processes; returns failures.

    Each process pays the start-up (nbgrader, torch, the sandbox) once, then grades pair after pair.
    """
    root = Path(root).resolve()
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pairs = [(a, s) for a in assignments for s in submitted_students(root, a)]
    if not pairs:
        return []
    progress, output = logs / TIMES_FILE, logs / "autograde-output.log"
    progress.write_text("")
    output.write_text("")
    bar = ProgressBar(len(pairs), "autograde", out)
    bar.show(0)
    start = (str(root), threads, str(progress), str(output))
    context = multiprocessing.get_context("spawn")  # a clean interpreter per grading process
    with open(logs / "autograde.log", "w") as log, \
            ProcessPoolExecutor(min(jobs, len(pairs)), mp_context=context, initializer=_start_grader, initargs=start) as pool:
        graded = {pool.submit(_grade, *pair): pair for pair in pairs}
        for done, future in enumerate(as_completed(graded), 1):
            assignment, student = graded[future]
            try:
                text = future.result()
            except Exception as error:  # noqa: BLE001 - a grading process died: the retry below takes over
                text = f"the grading process failed: {type(error).__name__}: {error}"
            if text:
                log.write(f"== {student}/{assignment}\n{text}\n")
            bar.show(done)
    failures = []
    for assignment, student in _ungraded(root, pairs):
        with open(logs / f"autograde-{assignment}-{student}.log", "w") as log_file:
            _retry_alone(root, assignment, student, threads, progress, log_file)
        if _ungraded(root, [(assignment, student)]):
            reason = _failure_reason(root, assignment, student)
            record_failure(root, assignment, student, reason)
            failures.append((assignment, student, reason))
    bar.show(len(pairs), final=True)
    slowest = sorted(read_times(root), key=lambda row: -row[2])[:3]
    if slowest:
        listed = ", ".join(f"{student}/{assignment} {seconds:.1f} s" for assignment, student, seconds in slowest)
        out.write(f"slowest: {listed} (every notebook: logs/{TIMES_FILE})\n")
    for assignment, student, reason in failures:
        out.write(f"NOT GRADED {student}/{assignment}: {reason} (scored 0; see logs/)\n")
    return failures


def mark_progress(assignment, student, seconds):
    """Called by the executor after each notebook: one line in the batch's progress file."""
    path = os.environ.get(PROGRESS_ENV)
    if path:
        with open(path, "a") as handle:
            handle.write(f"{assignment}\t{student}\t{seconds:.3f}\n")


def read_times(root):
    """[(assignment, student, seconds)] of the last batch: the time each notebook took to run."""
    path = Path(root) / "logs" / TIMES_FILE
    rows = [line.split("\t") for line in path.read_text().splitlines()] if path.exists() else []
    return [(a, s, float(seconds)) for a, s, seconds in rows]
