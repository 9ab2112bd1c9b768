"""Reading a student's submission folder: regular files inside it only, with size caps, and a trusted time.

nbgrader reads a submission with `shutil.copy`, `glob` and `open`, which follow symbolic links: a
link beside (or instead of) the notebook would copy the hidden tests, the gradebook or another
student's notebook into the student's sandbox, a link to /dev/urandom would fill the disk, a FIFO
would hang the grader. Here nothing is followed: links, devices, FIFOs and sockets are refused
(with a reason the student reads in the feedback), every file is opened with O_NOFOLLOW and read
up to a cap. `SafeAutograde` makes nbgrader's autograde read through this, and `TrustedCollect`
makes nbgrader's collect copy through this and record the submission time from the exchange
itself (the kernel's change time of what the student uploaded), never from `timestamp.txt`,
which the student writes.
"""

import datetime
import fnmatch
import os
import stat
from pathlib import Path

from nbgrader.converters import Autograde
from nbgrader.converters.base import BaseConverter, NbGraderException
from nbgrader.exchange.default.collect import ExchangeCollect

MAX_FILE_BYTES = 32 * 2**20
MAX_TOTAL_BYTES = 64 * 2**20
MAX_ENTRIES = 1000
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"       # nbgrader's timestamp.txt


def _kind(mode):
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class Folder:
    """What a submission folder holds, read once without following any link.

    Every folder is opened relative to its parent's descriptor and every file relative to its
    folder's, with O_NOFOLLOW: a folder or file swapped for a link while it is read is refused,
    never followed. `files` {relative path: bytes} (or sizes, with `contents=False`), `refused`
    [(relative path, reason)], `owner` the uid of the folder that was read, `changed` the latest
    change time (UTC) of anything in it, which the kernel sets and no one can move back.
    """

    def __init__(self, folder, ignore=(), contents=True):
        self.files, self.refused, self.total, self.seen = {}, [], 0, 0
        top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        info = os.fstat(top)
        self.owner, latest = info.st_uid, info.st_ctime
        todo = [(Path(), top)]
        try:
            while todo:
                relative, fd = todo.pop()
                try:
                    latest = max(latest, self._read_folder(relative, fd, ignore, contents, todo))
                finally:
                    os.close(fd)
        finally:
            for _, fd in todo:
                os.close(fd)
        self.changed = datetime.datetime.fromtimestamp(latest, datetime.timezone.utc)

    def _read_folder(self, relative, fd, ignore, contents, todo):
        latest = 0.0
        try:
            with os.scandir(fd) as listing:
                names = sorted(entry.name for entry in listing)
        except OSError as error:
            self.refused.append((str(relative), f"cannot be read ({error.strerror})"))
            return latest
        for name in names:
            path = relative / name
            if any(fnmatch.fnmatch(name, pattern) for pattern in ignore):
                continue
            self.seen += 1
            if self.seen > MAX_ENTRIES:
                self.refused.append((str(path), f"over {MAX_ENTRIES} files: the rest of the folder was not read"))
                while todo:                  # the folders not read yet are closed, not left open
                    os.close(todo.pop()[1])
                return latest
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                latest = max(latest, info.st_ctime)
                if stat.S_ISDIR(info.st_mode):
                    todo.append((path, os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)))
                elif not stat.S_ISREG(info.st_mode):
                    self.refused.append((str(path), f"is {_kind(info.st_mode)}"))
                elif info.st_size > MAX_FILE_BYTES or self.total + info.st_size > MAX_TOTAL_BYTES:
                    self.refused.append((str(path), f"is too large ({info.st_size} bytes; at most {MAX_FILE_BYTES} per file, {MAX_TOTAL_BYTES} in all)"))
                else:
                    data = _read_at(fd, name, MAX_FILE_BYTES) if contents else info.st_size
                    self.total += len(data) if contents else data
                    self.files[str(path)] = data
            except (OSError, ValueError) as error:   # changed while read: a link, a FIFO, gone
                self.refused.append((str(path), str(error) if isinstance(error, ValueError) else f"cannot be read ({error.strerror})"))
        return latest


def _read_at(dir_fd, name, limit):
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return _read_open(fd, name, limit)
    finally:
        os.close(fd)


def _read_open(fd, name, limit):
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{name} is {_kind(info.st_mode)}")
    if info.st_size > limit:
        raise ValueError(f"{name} is too large ({info.st_size} bytes)")
    with os.fdopen(fd, "rb", closefd=False) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{name} grew past {limit} bytes while it was read")
    return data


def read_regular(path, limit=MAX_FILE_BYTES):
    """The bytes of a regular file, opened without following a link, at most `limit` (ValueError otherwise)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        return _read_open(fd, path, limit)
    finally:
        os.close(fd)


def safe_copy(source, destination, ignore=()):
    """Copy the regular files of `source` into `destination`; returns the `Folder` that was read."""
    folder = Folder(source, ignore)
    for relative, data in folder.files.items():
        target = Path(destination) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.write_bytes(data)
    return folder


def refusal_notes(refused):
    return "; ".join(f"`{path}` {reason}" for path, reason in refused)


def trusted_time(folder):
    """When the student last changed `folder` (UTC): the latest change time of anything in it (`Folder.changed`)."""
    return Folder(folder, contents=False).changed


class _SafeCopy(BaseConverter):
    """nbgrader's copying of a submission's other files, reading only regular files (see `safe_copy`)."""

    def init_assignment(self, assignment_id, student_id):
        source = self._format_source(assignment_id, student_id)
        refused = safe_copy(source, self._format_dest(assignment_id, student_id), [*self.coursedir.ignore, "*.ipynb"]).refused
        if refused:  # the executor tells the student (SandboxedExecute)
            self.log.warning("%s/%s: refused %s", student_id, assignment_id, refusal_notes(refused))


class SafeAutograde(Autograde, _SafeCopy):
    """nbgrader's Autograde, reading a submission only through `intake` (no link, FIFO or device is followed).

    `Autograde.init_assignment` calls `super(Autograde, self).init_assignment`, which this class's
    order of bases makes `_SafeCopy.init_assignment`. A notebook that is not a regular file is not
    graded (nbgrader then reports no notebook, and the batch records 0 with the reason).
    """

    def init_destination(self, assignment_id, student_id):
        """As nbgrader's (its first step), but a `timestamp.txt` that is not a regular file is refused before nbgrader opens it."""
        timestamp = Path(self._format_source(assignment_id, student_id)) / "timestamp.txt"
        if os.path.lexists(timestamp) and not stat.S_ISREG(os.lstat(timestamp).st_mode):
            raise NbGraderException(f"timestamp.txt is {_kind(os.lstat(timestamp).st_mode)}: the submission time cannot be read")
        return super().init_destination(assignment_id, student_id)

    def init_notebooks(self):
        super().init_notebooks()
        for assignment, notebooks in list(self.assignments.items()):
            regular = [path for path in notebooks if stat.S_ISREG(os.lstat(path).st_mode)]
            if regular:
                self.assignments[assignment] = regular
            else:
                del self.assignments[assignment]
                self.log.error("%s: no notebook that is a regular file (a link is not read)", assignment)
        if not self.assignments:
            raise NbGraderException("no notebook to grade that is a regular file")


def install():
    """Make nbgrader's autograde commands and API use SafeAutograde (called from nbgrader_config.py)."""
    import nbgrader.apps.api
    import nbgrader.apps.autogradeapp

    nbgrader.apps.api.Autograde = SafeAutograde
    nbgrader.apps.autogradeapp.Autograde = SafeAutograde


class TrustedCollect(ExchangeCollect):
    """nbgrader's collect, with the submission time taken from the exchange and a copy that follows no link.

    The time in an inbound folder's name and its `timestamp.txt` are written by the student's side;
    here both are replaced by `trusted_time` of the folder, which decides which submission counts and
    how late it is.
    """

    def _path_to_record(self, path):
        record = super()._path_to_record(path)
        record["timestamp"] = trusted_time(os.path.join(self.inbound_path, record["filename"]))
        return record

    def do_copy(self, src, dest, log=None):
        folder = safe_copy(src, dest, [*self.coursedir.ignore, "timestamp.txt"])
        for path, reason in folder.refused:
            self.log.warning("%s: refused %s: %s", src, path, reason)
        Path(dest).mkdir(parents=True, exist_ok=True)
        (Path(dest) / "timestamp.txt").write_text(folder.changed.strftime(TIME_FORMAT))
