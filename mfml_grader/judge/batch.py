"""Batch autograding across cores: `python -m mfml_grader autograde --jobs N [assignment ...]`.

nbgrader grades one notebook after another, so this starts N grading processes, each with
nbgrader's own API (`NbGraderAPI.autograde`, the call formgrader makes) configured by the course's
nbgrader_config.py and its own warm sandbox, and hands them (assignment, student) pairs from one
queue: a process that finishes early takes the next pair, so no core idles while work is left.
One progress bar. Gradebook writes stay safe: sqlite waits for its lock (the configured db_url's `?timeout=`).
Nothing is lost: a submission whose grading failed is retried alone with plain `nbgrader
autograde`, and if it fails again it gets zero points with the reason written where the student
will read it.
"""

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat

from .. import course
from ..gradebook import open_gradebook, share_engines
from .executor import SandboxedExecute, judge_for

PROGRESS_ENV = "MFML_PROGRESS_FILE"
TIMES_FILE = "autograde-times.tsv"   # in logs/: assignment, student, seconds running the notebook, seconds grading it in all


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


def prepare_gradebook(root, pairs):
    """Create the gradebook's schema and every student of `pairs` before any grader starts.

    nbgrader creates a new student by looking it up, then inserting it, and creates the schema on
    every open: two graders that meet the same new student (or a new database) at the same moment
    can both insert, and one of them fails. Done once here, by the one coordinator, no grader inserts.
    """
    with open_gradebook(root) as gradebook:
        known = {student.id for student in gradebook.students}
        for student in sorted({student for _, student in pairs} - known):
            gradebook.add_student(student)


def _retry_alone(root, assignment, student, threads, progress_file, log_file, limit):
    """Grade one submission with a plain `nbgrader autograde` process of its own (stopped past `limit` s)."""
    command = ["nbgrader", "autograde", assignment, f"--CourseDirectory.student_id={student}", "--force", "--log-level=WARN"]
    env = nbgrader_env(**_grading_vars(threads, progress_file))
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT, check=False, timeout=limit)


_api = None
_running = None   # the notebook's running time, from the executor, while _grade grades it
GRACE_SECONDS = 120   # beyond the notebook's own limit: nbgrader's steps before and after running it


def _start_grader(root, threads, progress_file, output_file):
    """Set up one grading process: nbgrader's API, configured as `nbgrader autograde` would be.

    Returns the wall-clock limit for one submission: the executor's limit per notebook plus a grace.
    """
    global _api
    os.chdir(root)
    os.environ.update(_grading_vars(threads, progress_file))
    output = os.open(output_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(output, 1)  # warnings and anything else printed go to the log, not over the progress bar
    os.dup2(output, 2)
    from nbgrader.apps import NbGraderAPI
    from nbgrader.apps.autogradeapp import AutogradeApp

    share_engines()
    app = AutogradeApp()
    app.initialize(["--log-level=WARN"])  # reads nbgrader_config.py like the command line does
    _api = NbGraderAPI(coursedir=app.coursedir, parent=app)
    execute = SandboxedExecute(config=app.config)
    judge_for(execute)   # the sandbox starts with the grading process, not with its first notebook
    return execute.notebook_timeout + GRACE_SECONDS


def _grade(assignment, student, feedback=False):
    """Autograde one submission in this grading process (then its feedback pages, when asked); returns its log.

    One grader at a time per submission: a grading process whose parent was killed (a Dask worker)
    may still be finishing the pair its retry is about to grade. The lock (in logs/, on the course's
    file system) is released when the holder exits, so the retry waits for it and then grades alone.
    """
    import fcntl

    locks = Path(_api.coursedir.root) / "logs" / "grading-locks"
    locks.mkdir(parents=True, exist_ok=True)
    global _running
    with open(locks / f"{assignment}--{student}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _running, started = None, time.monotonic()
        results = [_api.autograde(assignment, student)]
        if _running is not None:
            _write_time(assignment, student, f"{_running:.3f}\t{time.monotonic() - started:.3f}")
        if feedback:
            results.append(_api.generate_feedback(assignment, student, force=True))
    lines = [line for result in results for line in result.get("log", "").splitlines() if not line.startswith(("[INFO]", "[DEBUG]"))]
    return "\n".join(lines + [result.get("error", "") for result in results]).strip()


def _exit_with_parent():
    """Stop this grading process when the process that started it is gone (killed without a goodbye)."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _serve(connection, start):
    """A grading process: set up once, then grade each (assignment, student) it is sent."""
    _exit_with_parent()
    connection.send(_start_grader(*start))
    while True:
        try:
            pair = connection.recv()
        except EOFError:
            return
        try:
            text = _grade(*pair)
        except Exception as error:  # noqa: BLE001 - reported; the retry takes over
            text = f"grading failed: {type(error).__name__}: {error}"
        connection.send(text)


class _Grader:
    """One grading process of the pool, and the pair it is working on."""

    def __init__(self, context, start):
        self.connection, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, start), daemon=True)
        self.process.start()
        theirs.close()
        self.pair, self.since, self.limit, self.started = None, None, None, time.monotonic()

    def give(self, pair):
        self.pair, self.since = pair, time.monotonic()
        self.connection.send(pair)

    def kill(self):
        self.process.kill()
        self.process.join()
        self.connection.close()


STARTUP_SECONDS = 300


class Pool:
    """`jobs` warm grading processes taking jobs ((assignment, student[, feedback])) from one queue.

    A submission that runs past the limit (the notebook's own, plus a grace) costs its grading
    process, which is killed and replaced: (job, None, reason). A process that dies on its own
    leaves its job ungraded: (job, "the grading process died", None); the caller retries it.
    Otherwise (job, log text, None). Each comes with the seconds since a grader took the job.
    Jobs left when grading processes keep failing to start stay in `queue` for the caller.
    """

    def __init__(self, jobs, start):
        self.context = multiprocessing.get_context("spawn")  # a clean interpreter per grading process
        self.jobs, self.start = jobs, start
        self.queue, self.graders, self.failed_starts, self.limit = [], [], 0, None

    def add(self, job):
        self.queue.insert(0, job)

    def warm(self):
        """Start every grading process now (a service waits for work with its graders ready)."""
        while len(self.graders) < self.jobs:
            self.graders.append(_Grader(self.context, self.start))

    def ready(self):
        """Whether every grading process has started (and none is starting)."""
        return bool(self.graders) and all(g.limit is not None for g in self.graders)

    def working(self):
        """Whether anything is left to grade (and a grading process can still start)."""
        return (bool(self.queue) and self.failed_starts < 2 * self.jobs) or any(g.pair for g in self.graders)

    def step(self, timeout=1.0):
        """Start graders, hand out jobs, wait up to `timeout` s; returns [(job, log text, reason, seconds)] finished."""
        busy = sum(bool(g.pair) for g in self.graders)
        while self.failed_starts < 2 * self.jobs and len(self.graders) < min(self.jobs, len(self.queue) + busy):
            self.graders.append(_Grader(self.context, self.start))
        for grader in self.graders:
            if grader.pair is None and grader.limit is not None and self.queue:
                grader.give(self.queue.pop())
        ready = multiprocessing.connection.wait([g.connection for g in self.graders] + [g.process.sentinel for g in self.graders],
                                                timeout=timeout)
        now, finished = time.monotonic(), []
        for grader in list(self.graders):
            message = None
            if grader.connection in ready:
                with contextlib.suppress(EOFError, OSError):
                    message = grader.connection.recv()
            if message is not None and grader.limit is None:
                grader.limit = self.limit = float(message)
            elif message is not None:
                job, grader.pair = grader.pair, None
                finished.append((job, message, None, now - grader.since))
            elif grader.pair and now - grader.since > grader.limit:
                self._drop(grader)
                finished.append((grader.pair, None, f"grading took longer than {grader.limit:.0f} s (the limit per submission) and was stopped",
                                 now - grader.since))
            elif not grader.process.is_alive() or (grader.limit is None and now - grader.started > STARTUP_SECONDS):
                self._drop(grader)
                if grader.pair:
                    finished.append((grader.pair, "the grading process died", None, now - grader.since))
                elif grader.limit is None:
                    self.failed_starts += 1
        return finished

    def _drop(self, grader):
        grader.kill()
        self.graders.remove(grader)

    def close(self):
        for grader in self.graders:
            grader.kill()
        self.graders = []


def _run_pool(pairs, jobs, start, on_done):
    """Grade `pairs` with a Pool of `jobs` grading processes; `on_done(pair, log text, reason)`; returns the limit per submission."""
    pool = Pool(jobs, start)
    for pair in pairs:
        pool.add(pair)
    try:
        while pool.working():
            for pair, text, reason, _ in pool.step():
                on_done(pair, text, reason)
    finally:
        pool.close()
    return pool.limit


class ProgressBar:
    """`[#######.....] 23/40 notebooks  4.1/s  ETA 4s` on one refreshed line (a line per step when not a tty)."""

    def __init__(self, total, label, out=sys.stderr, unit="notebooks"):
        self.total, self.label, self.out, self.unit = total, label, out, unit
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
        line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {self.unit}  {rate:.1f}/s  {eta}"
        if self.out.isatty():
            self.out.write("\r" + line + ("\n" if final else ""))
        elif final or done * 10 // max(1, self.total) != self.logged:  # a log file: a line per tenth
            self.logged = done * 10 // max(1, self.total)
            self.out.write(line + "\n")
        self.out.flush()


def ungraded(root, pairs):
    """The (assignment, student) pairs without an autograded notebook or with a grade left unscored."""
    from nbgrader.api import MissingEntry

    missing = []
    with open_gradebook(root) as gradebook:
        for assignment, student in pairs:
            try:
                notebook = gradebook.find_submission_notebook(assignment, assignment, student)
                graded = all(g.auto_score is not None or g.needs_manual_grade for g in notebook.grades)
            except MissingEntry:
                graded = False
            if not (graded and (root / "autograded" / student / assignment / f"{assignment}.ipynb").exists()):
                missing.append((assignment, student))
    return missing


def failure_reason(root, assignment, student):
    """Why nbgrader could not grade a submission, in words for the student (read without following links)."""
    from .. import intake

    folder = root / "submitted" / student / assignment
    expected = folder / f"{assignment}.ipynb"
    timestamp = folder / "timestamp.txt"
    if timestamp.is_symlink() or (os.path.lexists(timestamp) and not timestamp.is_file()):
        return "its timestamp.txt is not a regular file, so the submission time cannot be read"
    if not expected.is_symlink() and not expected.exists():
        found = sorted(p.name for p in folder.glob("*.ipynb"))
        return f"no {assignment}.ipynb in the submission (found: {', '.join(found) or 'no notebook'}); submit the notebook under its original name"
    try:
        text = intake.read_regular(expected)
    except (OSError, ValueError) as error:
        return f"{assignment}.ipynb was not read: {error}; submit the notebook itself"
    try:
        nbformat.reads(text.decode(), as_version=4)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same treatment
        return f"{assignment}.ipynb is not a readable notebook ({type(error).__name__}: {str(error)[:200]})"
    return "the grader could not process this notebook (its cell structure or metadata is broken); see the grading log"


def record_failure(root, assignment, student, reason):
    """Zero points with a reason: in the gradebook, and in an autograded notebook feedback can show."""
    with open_gradebook(root) as gradebook:
        gradebook.update_or_create_student(student)  # nbgrader may have stopped before it made the student
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


def autograde(root, assignments, jobs, out=sys.stderr, cluster=None):
    """Grade every submission of `assignments` with `jobs` grading processes; returns failures.

    Each process pays the start-up (nbgrader, torch, the sandbox) once, then grades pair after pair.
    `cluster`: None for processes of this machine, else where Dask runs them (mfml_grader/judge/cluster.py).
    """
    root = Path(root).resolve()
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pairs = [(a, s) for a in assignments for s in submitted_students(root, a)]
    if not pairs:
        return []
    prepare_gradebook(root, pairs)
    progress, output = logs / TIMES_FILE, logs / "autograde-output.log"
    progress.write_text("")
    output.write_text("")
    bar = ProgressBar(len(pairs), "autograde", out)
    bar.show(0)
    start = (str(root), threads, str(progress), str(output))
    failures, done = [], []
    with open(logs / "autograde.log", "w") as log:
        def finished(pair, text, reason):
            assignment, student = pair
            if reason:
                record_failure(root, assignment, student, reason)
                failures.append((assignment, student, reason))
            elif text:
                log.write(f"== {student}/{assignment}\n{text}\n")
            done.append(pair)
            bar.show(len(done))

        if cluster:
            from .cluster import run_on_cluster

            run_on_cluster(cluster, pairs, jobs, start, finished)
            limit = None
        else:
            limit = _run_pool(pairs, jobs, start, finished)
        limit = limit or SandboxedExecute.notebook_timeout.default_value + GRACE_SECONDS
    stopped = {(a, s) for a, s, _ in failures}
    for assignment, student in ungraded(root, [p for p in pairs if p not in stopped]):
        with open(logs / f"autograde-{assignment}-{student}.log", "w") as log_file:
            _retry_alone(root, assignment, student, threads, progress, log_file, limit)
        if ungraded(root, [(assignment, student)]):
            reason = failure_reason(root, assignment, student)
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
    """Called by the executor after running a notebook: a line in the batch's progress file.

    In a grading process of the batch `_grade` writes it, with the whole time it spent on the notebook.
    """
    global _running
    if _api is not None:
        _running = seconds
    else:
        _write_time(assignment, student, f"{seconds:.3f}")


def _write_time(assignment, student, columns):
    path = os.environ.get(PROGRESS_ENV)
    if path:
        with open(path, "a") as handle:
            handle.write(f"{assignment}\t{student}\t{columns}\n")


def _rows(root):
    path = Path(root) / "logs" / TIMES_FILE
    return [line.split("\t") for line in path.read_text().splitlines()] if path.exists() else []


def read_times(root):
    """[(assignment, student, seconds)] of the last batch: the time each notebook took to run."""
    return [(a, s, float(seconds)) for a, s, seconds, *_ in _rows(root)]


def read_overheads(root):
    """[(assignment, student, seconds)] of the last batch: what grading each notebook cost beyond running it
    (nbgrader's steps and the gradebook's writes), where a grading process of the batch graded it."""
    return [(a, s, float(whole[0]) - float(seconds)) for a, s, seconds, *whole in _rows(root) if whole]
