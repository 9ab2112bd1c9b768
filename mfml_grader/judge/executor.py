"""`SandboxedExecute`: nbgrader's Execute step, with student code in the sandbox and tests outside.

Configured in nbgrader_config.py as the first of `Autograde.autograde_preprocessors`. For each
notebook: a fresh sandboxed process runs every code cell except the autograder test cells; the
test cells (restored from the gradebook by nbgrader, hidden blocks included) run here, in the
trusted grading process, where student functions are proxies that return plain values. Outputs land
in the cells exactly as nbgrader's own Execute would put them, so grading, feedback and export work
unchanged.

Kept free of torch imports at module level: nbgrader loads its config for every command.
"""

import os
import time
from pathlib import Path

import nbformat
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Float, Integer

from .limits import DEFAULT_LIMITS, Limits

_judge = None


def judge_for(preprocessor):
    """The grading process's one warm sandbox (started on first use, killed at exit)."""
    global _judge
    if _judge is None:
        import atexit

        from .session import Judge

        limits = Limits(cell_seconds=preprocessor.cell_timeout, notebook_seconds=preprocessor.notebook_timeout,
                        output_chars=preprocessor.max_output_chars, notebook_output_chars=preprocessor.max_notebook_output_chars,
                        cell_source_chars=preprocessor.max_cell_chars, scratch_bytes=preprocessor.scratch_bytes)
        limits.rlimits["RLIMIT_AS"] = preprocessor.memory_bytes
        limits.rlimits["RLIMIT_NPROC"] = preprocessor.max_processes
        threads = int(os.environ.get("MFML_THREADS", "0")) or preprocessor.threads or 1
        import torch

        torch.set_num_threads(1)  # the checks are small; parallelism comes from the batch's jobs
        _judge = Judge(limits, threads=threads, require_sandbox=preprocessor.require_sandbox)
        if _judge.sandboxed:
            preprocessor.log.info("grading in the bubblewrap sandbox")
        atexit.register(_judge.close)
    return _judge


class SandboxedExecute(NbGraderPreprocessor):
    """Run a submission in the sandbox and its test cells in the grader (replaces nbgrader's Execute)."""

    cell_timeout = Float(Limits.cell_seconds, help="Seconds a cell (or one call of a student function) may take.").tag(config=True)
    notebook_timeout = Float(Limits.notebook_seconds, help="Seconds the whole notebook may take.").tag(config=True)
    memory_bytes = Integer(DEFAULT_LIMITS["RLIMIT_AS"], help="Address space per process of the submission.").tag(config=True)
    max_processes = Integer(DEFAULT_LIMITS["RLIMIT_NPROC"], help="Processes and threads the submission may have at once.").tag(config=True)
    max_output_chars = Integer(Limits.output_chars, help="Characters of output kept per cell (errors and images included).").tag(config=True)
    max_notebook_output_chars = Integer(Limits.notebook_output_chars, help="Characters of output kept per notebook.").tag(config=True)
    max_cell_chars = Integer(Limits.cell_source_chars, help="A cell of the submission longer than this is dropped with a note.").tag(config=True)
    scratch_bytes = Integer(Limits.scratch_bytes, help="Size of the sandbox's writable tmpfs.").tag(config=True)
    threads = Integer(1, help="torch threads per submission (MFML_THREADS overrides).").tag(config=True)
    require_sandbox = Bool(False, help="Refuse to grade when bubblewrap cannot run.").tag(config=True)
    skip_independent_cells = Bool(True, help="Leave out the instructor's cells that no grade can depend on "
                                  "(experiments, figures; mfml_grader/judge/independent.py).").tag(config=True)

    def preprocess(self, nb, resources):
        """Run `nb` (nbgrader's autograde phase reads it from autograded/; its files come from submitted/)."""
        from .. import course, figures
        from .batch import mark_progress
        from .independent import for_submission
        from .notebook_run import run_notebook

        judge = judge_for(self)  # started once per grading process: not part of the notebook's time
        coursedir = CourseDirectory(config=self.config)
        names = resources.get("nbgrader", {})
        folder = Path(coursedir.format_path(coursedir.submitted_directory, names.get("student", "?"), names.get("assignment", "?")))
        files, note = _support_files(folder, coursedir.ignore)
        if note:
            self.log.warning("%s", note)
            nb.cells.insert(0, nbformat.v4.new_markdown_cell(note))
        assignment = names.get("assignment", "?")
        skip = for_submission(nb, assignment, coursedir.root) if self.skip_independent_cells else set()
        started = time.monotonic()
        try:
            run_notebook(nb, judge, files, self.log, figures.released(course.release_notebook(assignment, coursedir.root)), skip)
        finally:
            mark_progress(assignment, names.get("student", "?"), time.monotonic() - started)
        return nb, resources


def _support_files(folder, ignore):
    """The assignment's other files (data the notebook reads), for the sandbox: regular files only.

    Returns ({relative path: bytes}, note for the student or ''): links, devices, FIFOs and
    oversized files are refused (mfml_grader/intake.py), and the notebook says so.
    """
    from .. import intake

    read = intake.Folder(folder, [*ignore, "*.ipynb", "timestamp.txt"])
    files, refused = read.files, read.refused
    note = f"**The grader did not read these files of the submission:** {intake.refusal_notes(refused)}." if refused else ""
    return files, note
