"""The one door to nbgrader's gradebook, and sqlite settings for several graders writing at once.

`open_gradebook(root)` opens the database `CourseDirectory.db_url` names in the course's
nbgrader_config.py. WAL lets readers and a writer work at the same time, and with
synchronous=NORMAL a commit no longer waits for the disk (a power cut can lose the last grades
written, which a regrade restores); installed from nbgrader_config.py, so every command uses it.
"""

import functools
import os
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine


def _pragmas(dbapi_connection, _record):
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def tune_sqlite():
    if not event.contains(Engine, "connect", _pragmas):
        event.listen(Engine, "connect", _pragmas)


def share_engines():
    """In this process, every nbgrader Gradebook opened on one database URL uses one SQLAlchemy engine.

    nbgrader opens the gradebook about nine times for each notebook it grades, each time with a new
    engine: a new, empty cache of compiled statements, so its ~60 queries per notebook were compiled
    again every time (about 45 ms of grading a notebook), the schema checked table by table (14
    queries per open) and a new connection made. One engine per URL keeps that cache and its pooled
    connection (closing a Gradebook returns the connection to the pool, no longer disposed), and its
    schema is created or checked on its first open only. A sqlite file that was replaced or deleted
    meanwhile (`make clean` beside a running service) gets a new engine, so nothing is written to a
    file that is gone. Installed by the grading processes, which open gradebooks one after another on
    one thread.
    """
    import nbgrader.api

    if getattr(nbgrader.api.create_engine, "shared", False):
        return
    create, engines = nbgrader.api.create_engine, {}
    metadata = nbgrader.api.Base.metadata
    create_all, checked = metadata.create_all, set()

    def shared_engine(url, **options):
        key, now = (str(url), tuple(sorted(options.items()))), _database_file(url)
        engine, made_on = engines.get(key, (None, None))
        if engine is None or (made_on is not None and now != made_on):
            engine, made_on = create(url, **options), now
            engine.dispose = lambda close=True: None   # nbgrader's close: the connection stays pooled for the next open
        engines[key] = (engine, made_on or now)   # a file the engine created on its first open is its own
        return engine

    def create_all_once(bind, **options):
        if bind not in checked:
            create_all(bind=bind, **options)
            checked.add(bind)

    shared_engine.shared = True
    nbgrader.api.create_engine = shared_engine
    metadata.create_all = create_all_once


def _database_file(url):
    """(device, inode) of a sqlite database file, None for other databases or a file not (yet) there."""
    from sqlalchemy.engine import make_url

    parsed = make_url(str(url))
    if not parsed.get_backend_name() == "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    try:
        found = os.stat(parsed.database)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def course_config(root):
    """The configuration of the course's nbgrader_config.py (empty without one), as nbgrader's commands read it."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    root = Path(root).resolve()
    return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config() if (root / "nbgrader_config.py").exists() else Config()


@functools.lru_cache(maxsize=None)
def db_url(root):
    """The gradebook's URL as nbgrader's commands see it: `CourseDirectory.db_url` of the course's nbgrader_config.py.

    The one place a gradebook URL comes from, so a server database configured there is used by
    every tool (grading, tables, reports, exports), not only by nbgrader's own commands.
    """
    from nbgrader.coursedir import CourseDirectory

    root = Path(root).resolve()
    return CourseDirectory(config=course_config(root), root=str(root)).db_url


def open_gradebook(root):
    """nbgrader's Gradebook of the course at `root` (a context manager)."""
    from nbgrader.api import Gradebook

    return Gradebook(db_url(root))


def graded_submissions(root):
    """(assignment name, student id, nbgrader's SubmittedAssignment) of every graded submission, students in order."""
    from nbgrader.api import MissingEntry

    with open_gradebook(root) as gradebook:
        for assignment in gradebook.assignments:
            for student in sorted(s.id for s in gradebook.students):
                try:
                    submission = gradebook.find_submission(assignment.name, student)
                except MissingEntry:
                    continue
                yield assignment.name, student, submission


def test_cell_grades(submission):
    """{function: nbgrader Grade} of a submission's test cells (`test_<function>`)."""
    return {grade.name.removeprefix("test_"): grade for notebook in submission.notebooks for grade in notebook.grades
            if grade.name.startswith("test_")}
