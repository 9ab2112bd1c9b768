"""sqlite settings for nbgrader's gradebook when several graders write to it at once.

WAL lets readers and a writer work at the same time, and with synchronous=NORMAL a commit no
longer waits for the disk (a power cut can lose the last grades written, which a regrade restores).
Installed from nbgrader_config.py, so every nbgrader command uses it.
"""

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
