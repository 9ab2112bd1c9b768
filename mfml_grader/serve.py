"""Continuous grading: `python -m mfml_grader serve`, graded feedback seconds after a student submits.

Run in the course directory (beside its nbgrader_config.py), as a JupyterHub service or beside the
hub. It watches nbgrader's exchange (`Exchange.root/<course id>/inbound`) and, for each new
submission folder:

1. **takes it** once it is complete (its `submission_secret.txt` written, or nothing in it changed
   for `settle_seconds`): copies its regular files (no link, FIFO or device is followed:
   `intake.Folder`) to `service/attempts/`, and records the attempt with a trusted time, the
   earlier of the service's clock and the latest change time in the folder (which a student cannot
   move back). A folder whose owner is not the student it names (nor this service's own user) is
   ignored: no student submits for another;
2. **refuses it** when the student already has `max_graded` graded submissions of the assignment
   within `window_minutes`: a feedback page says so and when the next one will be graded;
3. **grades it** in a warm grading process (the batch's `Pool`: several submissions at once, never
   two of one student's assignment at once), with the trusted time in `timestamp.txt` (late
   penalties), generates its feedback and releases it under the submission's own key, where
   nbgrader's `fetch_feedback` (the Assignments tab's "Fetch Feedback") finds it;
4. **keeps the submission that counts** in the gradebook (`counts`: the last one submitted by the
   due date, else the last one; or the best score after late penalties), grading that one again
   when the newest is not it.

Attempts, and which one the gradebook holds, are rows in the gradebook's own database (tables
`mfml_attempts`, `mfml_counted`): a restart grades again what was taken but not finished, takes no
folder twice, and never counts an attempt twice against the limit.
"""

import contextlib
import datetime
import hashlib
import html
import os
import pwd
import re
import shutil
import signal
import stat
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import delete, select
from traitlets import Enum, Float, Integer
from traitlets.config import LoggingConfigurable

from . import course, intake
from .gradebook import course_config, db_url, open_gradebook
from .judge import batch

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
SECRET = re.compile(r"[0-9a-f]{128}")         # nbgrader's submission secret: secrets.token_hex(64)
RECHECK_SECONDS = 60.0                        # every pair's counted submission checked again (a due date may move)
SPANS = "serve-spans.tsv"                     # in logs/: student, when a grader took the job (epoch), seconds it took


class GradingService(LoggingConfigurable):
    """The continuous grader's settings (`c.GradingService.*` in nbgrader_config.py) and its loop."""

    max_graded = Integer(5, help="Graded submissions a student gets per assignment within `window_minutes`; "
                                 "more are refused with a message (0: no limit).").tag(config=True)
    window_minutes = Float(60.0, help="The window of the submission limit, in minutes.").tag(config=True)
    counts = Enum(["last", "best"], "last", help="Which graded submission the gradebook keeps: `last` (the last "
                                                 "one submitted by the due date, else the last one) or `best` "
                                                 "(the highest score after late penalties).").tag(config=True)
    poll_seconds = Float(0.1, help="How often the exchange's inbound folder is looked at.").tag(config=True)
    settle_seconds = Float(10.0, help="A folder without a submission secret is taken when nothing in it "
                                      "changed for this long.").tag(config=True)
    jobs = Integer(0, help="Grading processes kept warm (0: one per core).").tag(config=True)

    def __init__(self, root, out=sys.stdout, **kwargs):
        from nbgrader.coursedir import CourseDirectory

        self.root = Path(root).resolve()
        config = course_config(self.root)
        super().__init__(config=config, **kwargs)
        self.out = out
        course_id = CourseDirectory(config=config, root=str(self.root)).course_id
        exchange = Path(config.Exchange.root if "root" in config.Exchange else "/srv/nbgrader/exchange")
        self.inbound, self.outbound = exchange / course_id / "inbound", exchange / course_id / "feedback"
        self.attempts_dir = self.root / "service" / "attempts"
        self.assignments = set(course.assignments(self.root))
        self.db = _Database(db_url(self.root))
        self.known = self.db.folders()
        self.busy = {}        # (student, assignment) -> (attempt id, kind): "attempt" (with feedback) or "recount"
        self.pending = self.db.taken()     # [(attempt, student, assignment)] taken, not handed to a grader yet
        self.check = set(self.db.counted())  # pairs whose counted submission may have to change
        self.checked_all = time.monotonic()
        self.retried = set()  # attempt ids whose grading process died once
        self.students = set()  # in the gradebook already
        self.inbound_seen, self.waiting = None, 0   # the inbound's modification time when last listed; folders being written

    # -- the loop ------------------------------------------------------------------------------------

    def run(self, once=False):
        """Grade as submissions arrive; with `once`, stop when everything in the exchange is graded."""
        jobs = self.jobs or os.cpu_count() or 1
        threads = max(1, (os.cpu_count() or 1) // jobs)
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        start = (str(self.root), threads, str(logs / "serve-times.tsv"), str(logs / "serve-output.log"))
        self.outbound.mkdir(parents=True, exist_ok=True)
        self.outbound.chmod(0o711)     # as nbgrader's release_feedback: students open their own page, list none
        pool = batch.Pool(jobs, start)
        pool.warm()
        self._say(f"watching {self.inbound} with {jobs} grading process(es); limit {self.max_graded} per "
                  f"{self.window_minutes:g} min, counts: {self.counts}")
        announced = False
        try:
            while True:
                self._take_new()
                self._dispatch(pool)
                for job, text, reason, seconds in pool.step(self.poll_seconds):
                    self._finished(job, text, reason, seconds)
                if not announced and pool.ready():
                    announced = True
                    self._say(f"ready: {len(pool.graders)} grading process(es) started")
                if time.monotonic() - self.checked_all > RECHECK_SECONDS:   # a due date may have moved
                    self.check |= set(self.db.counted())
                    self.checked_all = time.monotonic()
                if once and not (self.waiting or self.busy or self.pending or self.check):
                    return
        finally:
            pool.close()

    def _say(self, text):
        self.out.write(f"{datetime.datetime.now():%H:%M:%S} {text}\n")
        self.out.flush()

    # -- 1. taking new submissions --------------------------------------------------------------------

    def _take_new(self):
        """Take every complete new folder of the inbound; `waiting` counts those still being written.

        The inbound (every submission of the term) is listed again only when its modification time says
        a folder came or went (or is within a second of now: the kernel's clock for file times is coarse,
        a folder made in the same tick leaves it unchanged), or while a folder is still being written."""
        try:
            changed = os.stat(self.inbound).st_mtime_ns
            if changed == self.inbound_seen and not self.waiting and time.time_ns() - changed > 1_000_000_000:
                return
            entries = [e for e in os.scandir(self.inbound) if e.name not in self.known]
        except FileNotFoundError:
            return
        self.inbound_seen, waiting = changed, 0
        for entry in sorted(entries, key=lambda e: e.name):
            try:
                why = self._not_acceptable(entry)
                complete = not why and self._complete(Path(entry.path))
            except OSError:             # removed while we looked: gone
                continue
            if why:
                self.db.add(entry.name, "?", "?", time.time(), "ignored", note=why)
                self.known.add(entry.name)
                self._say(f"ignored {entry.name}: {why}")
            elif complete:
                self._take(entry.name, entry.stat(follow_symlinks=False).st_uid)
            else:
                waiting += 1
        self.waiting = waiting

    def _not_acceptable(self, entry):
        info = entry.stat(follow_symlinks=False)
        parts = entry.name.split("+")
        if not stat.S_ISDIR(info.st_mode):
            return "not a folder"
        if len(parts) < 3 or not STUDENT_ID.fullmatch(parts[0]) or parts[1] not in self.assignments:
            return "not named <student>+<assignment>+<time> for an assignment of this course"
        if info.st_uid != os.geteuid():
            try:
                owner = pwd.getpwuid(info.st_uid).pw_name
            except KeyError:
                owner = str(info.st_uid)
            if owner != parts[0]:
                return f"made by {owner}, not by {parts[0]}"
        return None

    def _complete(self, folder):
        if _secret(folder):
            return True
        return time.time() - intake.trusted_time(folder).timestamp() > self.settle_seconds

    def _take(self, name, owner):
        student, assignment = name.split("+")[:2]
        source = self.inbound / name
        recent = self.db.recent(student, assignment, time.time() - 60 * self.window_minutes)
        if self.max_graded and len(recent) >= self.max_graded:
            self._refuse(name, student, assignment, recent)
            return
        snapshot = self._snapshot(name)
        partial = snapshot.with_name(snapshot.name + ".partial")
        for folder in (partial, snapshot):        # left by a run stopped before it recorded the attempt
            shutil.rmtree(folder, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            read = intake.safe_copy(source, partial, ["timestamp.txt"])
        except OSError as error:         # swapped for a link or removed since it was looked at
            read = None
            why = f"could not be read ({error.strerror})"
        if read is not None and read.owner != owner:
            why = "replaced by another user's folder while it was taken"
        if read is None or read.owner != owner:
            shutil.rmtree(partial, ignore_errors=True)
            self.db.add(name, "?", "?", time.time(), "ignored", note=why)
            self.known.add(name)
            self._say(f"ignored {name}: {why}")
            return
        submitted = min(time.time(), read.changed.timestamp())
        os.rename(partial, snapshot)
        attempt = self.db.add(name, student, assignment, submitted, "taken", note=intake.refusal_notes(read.refused) or None)
        self.pending.append((attempt, student, assignment))
        self.known.add(name)
        self._say(f"took {student}/{assignment} (attempt {attempt}, submitted {_utc(submitted):%H:%M:%S.%f} UTC)"
                  + (f"; not read: {intake.refusal_notes(read.refused)}" if read.refused else ""))

    def _refuse(self, name, student, assignment, recent):
        """Over the limit: recorded, a page that says so released, nothing copied (a flood of submissions costs no disk)."""
        again = datetime.datetime.fromtimestamp(min(recent) + 60 * self.window_minutes, datetime.timezone.utc)
        message = (f"Not graded: you already have {len(recent)} graded submissions of {assignment} in the last "
                   f"{self.window_minutes:g} minutes (the limit is {self.max_graded}). Submit again after "
                   f"{again:%H:%M:%S} UTC to have it graded. The grade that counts is unchanged.")
        submitted = min(time.time(), intake.trusted_time(self.inbound / name).timestamp())
        attempt = self.db.add(name, student, assignment, submitted, "refused", note=message)
        self.known.add(name)
        self._release_message(self.inbound / name, assignment, message)
        self._say(f"refused {student}/{assignment} (attempt {attempt}): over the limit")

    def _snapshot(self, name):
        """Where the service keeps its copy of the inbound folder `name` (a name the student chose: hashed)."""
        return self.attempts_dir / hashlib.sha256(name.encode()).hexdigest()[:24]

    # -- 3. grading -------------------------------------------------------------------------------------

    def _dispatch(self, pool):
        for attempt, student, assignment, kind in [(*row, "attempt") for row in self.pending] + self._recounts():
            if (student, assignment) in self.busy:
                continue
            if kind == "attempt":
                self.pending.remove((attempt, student, assignment))
            self._place(attempt, student, assignment)
            if student not in self.students:
                batch.prepare_gradebook(self.root, [(assignment, student)])
                self.students.add(student)
            self.busy[student, assignment] = (attempt, kind)
            pool.add((assignment, student, kind == "attempt"))

    def _place(self, attempt, student, assignment):
        """The attempt's files as nbgrader's submitted/<student>/<assignment>/, with its trusted time."""
        snapshot = self._snapshot(self.db.folder(attempt))
        folder = self.root / "submitted" / student / assignment
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(snapshot, folder)
        (folder / "timestamp.txt").write_text(_utc(self.db.submitted(attempt)).strftime(intake.TIME_FORMAT))

    def _finished(self, job, text, reason, seconds):
        assignment, student, _ = job
        with open(self.root / "logs" / SPANS, "a") as spans:
            spans.write(f"{student}\t{time.time() - seconds:.3f}\t{seconds:.3f}\n")
        attempt, kind = self.busy.pop((student, assignment))
        self.check.add((student, assignment))
        if text == "the grading process died" and attempt not in self.retried:
            self.retried.add(attempt)          # once more, in a new grading process
            if kind == "attempt":
                self.pending.insert(0, (attempt, student, assignment))
            return
        if not reason and (text == "the grading process died" or batch.ungraded(self.root, [(assignment, student)])):
            reason = batch.failure_reason(self.root, assignment, student)
        if reason:
            batch.record_failure(self.root, assignment, student, reason)
        score, max_score = self._score(assignment, student)
        if kind == "attempt":
            self.db.graded(attempt, score, max_score, reason)
            snapshot = self._snapshot(self.db.folder(attempt))
            if reason:
                self._release_message(snapshot, assignment, f"This submission could not be graded: {reason}. It scores 0.")
            else:
                self._release_feedback(snapshot, student, assignment)
        self.db.count(student, assignment, attempt)
        self._give_back(student, assignment)
        self._say(f"graded {student}/{assignment} (attempt {attempt}{', again: it counts' if kind == 'recount' else ''}): "
                  f"{score:g}/{max_score:g}{' - ' + reason if reason else ''}")

    def _give_back(self, student, assignment):
        """Run as root for a course another user owns (a hub's instructor): what grading wrote becomes theirs,
        so formgrader, running as that user, can regrade and write feedback there too."""
        owner = self.root.stat()
        if os.geteuid() != 0 or owner.st_uid == 0:
            return
        for top in ("submitted", "autograded", "feedback"):
            chain = [self.root / top, self.root / top / student]
            for path in chain + sorted((self.root / top / student / assignment).rglob("*")) + [self.root / top / student / assignment]:
                with contextlib.suppress(FileNotFoundError):
                    os.lchown(path, owner.st_uid, owner.st_gid)

    def _score(self, assignment, student):
        with open_gradebook(self.root) as gradebook:
            submission = gradebook.find_submission(assignment, student)
            return submission.score - (submission.late_submission_penalty or 0.0), submission.max_score

    # -- 4. the submission that counts ----------------------------------------------------------------

    def _recounts(self):
        """[(attempt, student, assignment, "recount")] of the pairs to check whose gradebook holds another
        attempt than the one that counts (a pair still being graded, or with attempts waiting, is checked later)."""
        waiting = {(s, a) for _, s, a in self.pending} | set(self.busy)
        ready = self.check - waiting
        if not ready:
            return []
        self.check -= ready
        held, due, wrong = self.db.counted(), {}, []
        for student, assignment in sorted(ready):
            if assignment not in due and self.counts == "last":
                due[assignment] = self._due(assignment)
            counts = self._counting(student, assignment, due.get(assignment))
            if counts is not None and counts != held.get((student, assignment)):
                wrong.append((counts, student, assignment, "recount"))
        return wrong

    def _counting(self, student, assignment, due):
        graded = self.db.graded_attempts(student, assignment)       # [(attempt, submitted, score)]
        if not graded:
            return None
        if self.counts == "best":
            return max(graded, key=lambda row: (row[2], row[0]))[0]
        on_time = [row for row in graded if due is None or row[1] <= due]
        return max(on_time or graded)[0]

    def _due(self, assignment):
        """The assignment's due date in seconds since the epoch (nbgrader keeps it in UTC), or None."""
        from nbgrader.api import MissingEntry

        with open_gradebook(self.root) as gradebook:
            try:
                due = gradebook.find_assignment(assignment).duedate
            except MissingEntry:
                return None
        return None if due is None else due.replace(tzinfo=datetime.timezone.utc).timestamp()

    # -- releasing what the student reads ------------------------------------------------------------

    def _release_feedback(self, snapshot, student, assignment):
        secret = _secret(snapshot)
        for page in sorted((self.root / "feedback" / student / assignment).glob("*.html")):
            if secret and (snapshot / f"{page.stem}.ipynb").exists():
                self._release(secret, page.stem, page.read_bytes())

    def _release_message(self, folder, assignment, message):
        """A page with `message` for each notebook of the assignment (the student looks for those they submitted)."""
        secret = _secret(folder)
        released = (self.root / "release" / assignment).glob("*.ipynb")
        for notebook in sorted({path.stem for path in released} | _notebooks(folder)) if secret else []:
            page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(notebook)}</title></head>"
                    f"<body><h1>{html.escape(notebook)}</h1><p>{html.escape(message)}</p></body></html>")
            self._release(secret, notebook, page.encode())

    def _release(self, secret, notebook_id, page):
        """Where nbgrader's fetch_feedback looks: feedback/<md5(secret, notebook id)>.html, replaced atomically."""
        from nbgrader.utils import notebook_hash

        destination = self.outbound / f"{notebook_hash(secret=secret, notebook_id=notebook_id)}.html"
        partial = destination.with_name(f".{destination.name}.{os.getpid()}")
        partial.write_bytes(page)
        partial.chmod(0o644)
        os.replace(partial, destination)


class _Database:
    """The service's rows, beside nbgrader's tables in the gradebook's database."""

    def __init__(self, url):
        metadata = sa.MetaData()
        self.attempts = sa.Table(
            "mfml_attempts", metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("folder", sa.String(512), unique=True, nullable=False),     # the inbound folder's name
            sa.Column("student", sa.String(128), nullable=False),
            sa.Column("assignment", sa.String(128), nullable=False),
            sa.Column("submitted", sa.Float, nullable=False),                     # trusted, seconds since the epoch
            sa.Column("status", sa.String(16), nullable=False),                   # taken, graded, refused, ignored
            sa.Column("score", sa.Float), sa.Column("max_score", sa.Float), sa.Column("note", sa.Text))
        self.counted_table = sa.Table(
            "mfml_counted", metadata,
            sa.Column("student", sa.String(128), primary_key=True), sa.Column("assignment", sa.String(128), primary_key=True),
            sa.Column("attempt", sa.Integer, nullable=False))                     # the attempt the gradebook holds
        self.engine = sa.create_engine(url)
        metadata.create_all(self.engine)

    def _rows(self, query):
        with self.engine.connect() as connection:
            return connection.execute(query).all()

    def _write(self, statement):
        with self.engine.begin() as connection:
            return connection.execute(statement)

    def folders(self):
        return {row.folder for row in self._rows(select(self.attempts.c.folder))}

    def add(self, folder, student, assignment, submitted, status, note=None):
        result = self._write(self.attempts.insert().values(folder=folder, student=student, assignment=assignment,
                                                           submitted=submitted, status=status, note=note))
        return result.inserted_primary_key[0]

    def _one(self, attempt, column):
        return self._rows(select(column).where(self.attempts.c.id == attempt))[0][0]

    def folder(self, attempt):
        return self._one(attempt, self.attempts.c.folder)

    def submitted(self, attempt):
        return self._one(attempt, self.attempts.c.submitted)

    def taken(self):
        a = self.attempts.c
        return [tuple(row) for row in self._rows(select(a.id, a.student, a.assignment).where(a.status == "taken").order_by(a.id))]

    def recent(self, student, assignment, since):
        """Submitted times of the pair's attempts that are graded or being graded, after `since`."""
        a = self.attempts.c
        query = select(a.submitted).where(a.student == student, a.assignment == assignment,
                                          a.status.in_(("taken", "graded")), a.submitted > since)
        return [row[0] for row in self._rows(query)]

    def graded(self, attempt, score, max_score, reason):
        self._write(self.attempts.update().where(self.attempts.c.id == attempt)
                    .values(status="graded", score=score, max_score=max_score, **({"note": reason} if reason else {})))

    def graded_attempts(self, student, assignment):
        a = self.attempts.c
        query = select(a.id, a.submitted, a.score).where(a.student == student, a.assignment == assignment, a.status == "graded")
        return [tuple(row) for row in self._rows(query)]

    def count(self, student, assignment, attempt):
        c = self.counted_table.c
        with self.engine.begin() as connection:
            connection.execute(delete(self.counted_table).where(c.student == student, c.assignment == assignment))
            connection.execute(self.counted_table.insert().values(student=student, assignment=assignment, attempt=attempt))

    def counted(self):
        c = self.counted_table.c
        return {(row.student, row.assignment): row.attempt for row in self._rows(select(c.student, c.assignment, c.attempt))}


def _utc(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


def _notebooks(folder):
    """The notebook names at the top of a submission folder (its listing only; nothing is opened)."""
    with contextlib.suppress(OSError):
        return {Path(name).stem for name in os.listdir(folder) if name.endswith(".ipynb")}
    return set()


def _secret(folder):
    with contextlib.suppress(OSError, ValueError):   # missing, a link, garbled: not there
        text = intake.read_regular(folder / "submission_secret.txt", 256).decode()
        return text if SECRET.fullmatch(text) else None
    return None


def main(root, once=False, jobs=None):
    """Run the service until it is told to stop (SIGINT or SIGTERM: a hub stopping its services, Ctrl-C),
    whatever signals the process that started it ignored."""
    def stop(signum, frame):
        raise KeyboardInterrupt

    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, stop)
    service = GradingService(root, jobs=jobs) if jobs else GradingService(root)
    try:
        service.run(once=once)
    except KeyboardInterrupt:
        service._say("stopped")
