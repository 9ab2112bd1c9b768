"""The trusted side of the judge: one warm worker per grading process, one session per submission.

`Judge` starts the sandboxed zygote once; `Judge.session()` forks a fresh child for one submission
and returns a `Session` that runs cells in it and calls its functions (`RemoteStudent`), with a
deadline on every request. Values come back through `protocol` (never pickle) and are plain.
"""

import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field

from ..student import Returned, StudentError
from . import protocol, uids
from .sandbox import start_worker

DEFAULT_LIMITS = {
    "RLIMIT_AS": 6 * 2**30,        # bytes of address space per process (torch maps a lot it never touches)
    "RLIMIT_NPROC": 64,            # processes and threads of the submission's uid
    "RLIMIT_FSIZE": 64 * 2**20,    # bytes per file written
    "RLIMIT_NOFILE": 256,
    "RLIMIT_CORE": 0,
    "RLIMIT_CPU": 900,             # CPU seconds: a backstop; wall-clock deadlines come first
}


INTERRUPT_GRACE = 5.0
ERROR_CHARS = 2000     # of an error message sent by the sandbox


class SessionEnded(Exception):
    """The submission's process is gone (crash, timeout, limit); `reason` says why, for the student."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Limits:
    cell_seconds: float = 60.0
    notebook_seconds: float = 600.0
    output_chars: int = 100_000             # characters of output kept per cell (errors and images included)
    notebook_output_chars: int = 2_000_000  # ... and per notebook
    cell_source_chars: int = 200_000        # a longer cell is dropped with a note
    scratch_bytes: int = 256 * 2**20
    rlimits: dict = field(default_factory=lambda: dict(DEFAULT_LIMITS))


class Judge:
    """Owns the zygote. Start once per grading process; `close()` kills the whole sandbox."""

    def __init__(self, limits=None, threads=1, require_sandbox=False):
        self.limits = limits or Limits()
        self.threads = threads
        self.uids = uids.acquire() if os.geteuid() == 0 else None  # this process's own uids, host-wide
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.stderr = tempfile.TemporaryFile()
        self.process, self.sandboxed = start_worker(theirs.fileno(), self.limits.scratch_bytes, self.stderr, require_sandbox)
        theirs.close()
        self.control.settimeout(120)
        try:
            ready = json.loads(self.control.recv(65536) or b"{}")
        except (OSError, ValueError):
            ready = {}
        if not ready.get("ready"):
            raise RuntimeError(f"the grading worker did not start: {self._worker_stderr()}")

    def _worker_stderr(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-2000:]

    def session(self, files=None):
        """A fresh process for one submission, with `files` ({relative path: bytes}) in its folder."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        message = {"op": "fork", "uid": self.uids.next_uid() if self.uids else 0, "limits": self.limits.rlimits,
                   "threads": self.threads, "scratch_bytes": self.limits.scratch_bytes}
        socket.send_fds(self.control, [json.dumps(message).encode()], [theirs.fileno()])
        theirs.close()
        pid = json.loads(self.control.recv(65536))["pid"]
        session = Session(self, ours, pid)
        if files:
            session.request({"op": "files"}, {path: _bytes_tensor(data) for path, data in files.items()}, timeout=60)
        return session

    def interrupt(self, pid):
        socket.send_fds(self.control, [json.dumps({"op": "interrupt", "pid": pid}).encode()], [])
        self.control.recv(65536)

    def end(self, pid):
        socket.send_fds(self.control, [json.dumps({"op": "end", "pid": pid}).encode()], [])
        return json.loads(self.control.recv(65536))["status"]

    def close(self):
        for closing in (self.control.close, self.process.kill, self.process.wait, *([self.uids.close] if self.uids else [])):
            try:
                closing()
            except OSError:
                pass


def _bytes_tensor(data):
    import torch

    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)


class Session:
    """One submission's process. Every request has a deadline; past it, the process is killed."""

    def __init__(self, judge, sock, pid):
        self.judge, self.sock, self.pid = judge, sock, pid
        self.started = time.monotonic()
        self.ended = None            # the reason, once the process is gone
        self.requests = 0

    def remaining(self):
        return self.judge.limits.notebook_seconds - (time.monotonic() - self.started)

    def request(self, message, value=None, timeout=None):
        """Send one request and return (reply, value); raises SessionEnded if the process is gone.

        Past the deadline the process is interrupted (KeyboardInterrupt in the student's code) and
        given INTERRUPT_GRACE seconds to answer; the reply then carries `timed_out`. A process that
        does not answer is killed.
        """
        if self.ended:
            raise SessionEnded(self.ended)
        budget = min(timeout or self.judge.limits.cell_seconds, self.remaining())
        if budget <= 0:
            self.close(f"the notebook ran out of time (limit {self.judge.limits.notebook_seconds:g} s for the whole notebook)")
            raise SessionEnded(self.ended)
        self.requests += 1
        message = {**message, "id": self.requests}
        frame = protocol.pack(message, value)  # a value that cannot cross fails this request only
        deadline = time.monotonic() + budget
        try:
            self.sock.settimeout(budget)
            try:
                self.sock.sendall(frame)
            except TimeoutError:
                self.close(f"the notebook's process did not take the grader's request within {budget:.0f} s")
                raise SessionEnded(self.ended) from None
            try:
                return self._answer_to(message, *protocol.receive(self.sock, deadline=deadline))
            except TimeoutError:
                self.judge.interrupt(self.pid)
                try:
                    reply, result = protocol.receive(self.sock, deadline=time.monotonic() + INTERRUPT_GRACE)
                except TimeoutError:
                    self.close(f"timed out after {budget:.0f} s and did not stop when interrupted; look for an infinite loop")
                    raise SessionEnded(self.ended) from None
                reply["timed_out"] = budget
                return self._answer_to(message, reply, result)
        except (EOFError, ConnectionError, OSError):
            self.close(None)
        except protocol.ProtocolError as error:
            self.close(f"the notebook's process sent something the grader refuses: {error}")
        raise SessionEnded(self.ended)

    def _answer_to(self, message, reply, result):
        if reply.get("id") != message["id"]:
            raise protocol.ProtocolError("an answer came out of turn (did the notebook fork a process that kept running?)")
        return reply, result

    def run_cell(self, source):
        reply, _ = self.request({"op": "run", "source": source, "output_limit": self.judge.limits.output_chars})
        if reply.get("timed_out"):
            reply.setdefault("outputs", []).append({"output_type": "error", "ename": "CellTimeoutError",
                                                    "evalue": f"this cell was stopped after {reply['timed_out']:.0f} s (time limit)", "traceback": []})
        return reply

    def close(self, reason=None):
        """End the process and everything it started; remember why (for the student)."""
        if self.ended:
            return
        self.sock.close()
        status = self.judge.end(self.pid)
        if reason is None:
            reason = _crash_reason(status)
        self.ended = reason


def _crash_reason(status):
    if status.startswith("signal SIGKILL"):
        return "the notebook's process was killed (SIGKILL): it probably ran out of memory or processes"
    if status.startswith("signal"):
        return f"the notebook's process crashed ({status.removeprefix('signal ')})"
    if status.startswith("exit"):
        return f"the notebook's process exited ({status}): do not call os._exit or exit the interpreter"
    return f"the notebook's process ended unexpectedly ({status})"


class RemoteStudent:
    """The `student` adapter for code living in a session: same interface as InProcessStudent."""

    def __init__(self, session, call_seconds=None):
        self.session = session
        self.call_seconds = call_seconds

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, args, kwargs)

    def _ask(self, message, value=None):
        try:
            return self.session.request(message, value, timeout=self.call_seconds)
        except SessionEnded as ended:
            raise StudentError(ended.reason) from None

    def defines(self, name):
        reply, _ = self._ask({"op": "defines", "name": name})
        return bool(reply.get("defines"))

    def kinds(self, names):
        reply, _ = self._ask({"op": "names", "names": list(names)})
        return reply.get("kinds", {})

    def get(self, name):
        reply, value = self._ask({"op": "get", "name": name})
        return _value_of(name, reply, value)

    def call(self, name, args=(), kwargs=None, **options):
        return self.invoke(name, args, kwargs, **options).value

    def invoke(self, name, args=(), kwargs=None, *, forbidden=(), substitutes=None):
        """Call `name` in the sandbox on (serialised, so separate) copies of the arguments.

        The arguments come back as the student's code left them; the caller's own objects are never
        touched, so nothing a submission does can reach an object the grader shares between students.
        """
        try:
            reply, value = self._ask({"op": "call", "name": name, "forbidden": list(forbidden),
                                      "substitutes": dict(substitutes or {})}, (tuple(args), dict(kwargs or {})))
        except protocol.ProtocolError as error:
            raise StudentError(str(error)) from None
        value = _value_of(name, reply, value)
        if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], tuple) and len(value[1]) == 2
                and isinstance(value[1][0], (tuple, list)) and isinstance(value[1][1], dict)):
            raise StudentError(f"the notebook's process answered the call of `{name}` with something that is not a result")
        result, (args_after, kwargs_after) = value
        return Returned(result, tuple(args_after), kwargs_after)


def _value_of(name, reply, value):
    if reply.get("timed_out"):
        raise StudentError(f"`{name}` did not finish within {reply['timed_out']:.0f} s (time limit): look for an infinite loop or a very slow computation")
    if not reply.get("ok"):
        raise StudentError(str(reply.get("error", "unknown error"))[:ERROR_CHARS], raised=bool(reply.get("raised")))
    return value
