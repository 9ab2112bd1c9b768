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

from ..student import Returned, StudentError
from . import protocol, uids
from .helpers import StandIns
from .limits import Limits
from .sandbox import start_worker

INTERRUPT_GRACE = 5.0
ERROR_CHARS = 2000     # of an error message sent by the sandbox


class SessionEnded(Exception):
    """The submission's process is gone (crash, timeout, limit); `reason` says why, for the student."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


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

    def _control(self, message):
        socket.send_fds(self.control, [json.dumps(message).encode()], [])
        return json.loads(self.control.recv(65536) or b"{}")

    def interrupt(self, pid):
        """SIGINT to a process of a submission (the zygote refuses any other)."""
        self._control({"op": "interrupt", "pid": pid})

    def kill(self, pid):
        """SIGKILL to a process of a submission (a snapshot whose checks are done)."""
        self._control({"op": "kill", "pid": pid})

    def end(self, pid, keep=()):
        """End a submission's process and all it started, except the processes in `keep` (its snapshots)."""
        return self._control({"op": "end", "pid": pid, "keep": list(keep)}).get("status", "gone")

    def release(self, pid):
        """End every process left of the submission that `pid` started (its snapshots), and clean its scratch."""
        self._control({"op": "release", "pid": pid})

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
    """One process of a submission. Every request has a deadline; past it, the process is killed.

    The submission's own process runs its cells; `snapshot()` forks a copy of it as it is at that
    moment, a Session of its own, in which the hidden checks run once the notebook has finished.
    """

    def __init__(self, judge, sock, pid, started=None, parent=None):
        self.judge, self.sock, self.pid, self.parent = judge, sock, pid, parent
        self.started = time.monotonic() if started is None else started
        self.ended = None            # the reason, once the process is gone
        self.requests = 0
        self.snapshots = []          # copies made by snapshot(): they outlive this process until released

    def remaining(self):
        return self.judge.limits.notebook_seconds - (time.monotonic() - self.started)

    def request(self, message, value=None, timeout=None, serve=None, fds=()):
        """Send one request and return (reply, value); raises SessionEnded if the process is gone.

        Past the deadline the process is interrupted (KeyboardInterrupt in the student's code) and
        given INTERRUPT_GRACE seconds to answer; the reply then carries `timed_out`. A process that
        does not answer is killed. While the request runs, the process may call back the course's
        helpers: `serve(reply, value, seconds left)` answers each such request.
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
                protocol.send_frame(self.sock, frame, fds)
            except TimeoutError:
                self.close(f"the notebook's process did not take the grader's request within {budget:.0f} s")
                raise SessionEnded(self.ended) from None
            while True:
                try:
                    reply, result = self._answer_to(message, *protocol.receive(self.sock, deadline=deadline))
                except TimeoutError:
                    self.judge.interrupt(self.pid)
                    try:
                        reply, result = protocol.receive(self.sock, deadline=time.monotonic() + INTERRUPT_GRACE)
                    except TimeoutError:
                        self.close(f"timed out after {budget:.0f} s and did not stop when interrupted; look for an infinite loop")
                        raise SessionEnded(self.ended) from None
                    reply["timed_out"] = budget
                    reply, result = self._answer_to(message, reply, result)
                if reply.get("op") not in ("helper", "helper_backward"):
                    return reply, result
                if serve is None:
                    raise protocol.ProtocolError("a call back to the grader that it did not allow")
                answer, value = serve(reply, result, deadline - time.monotonic())
                protocol.send(self.sock, {**answer, "id": message["id"]}, value)
        except (EOFError, ConnectionError, OSError):
            self.close(None)
        except protocol.ProtocolError as error:
            self.close(f"the notebook's process sent something the grader refuses: {error}")
        raise SessionEnded(self.ended)

    def _answer_to(self, message, reply, result):
        if reply.get("id") != message["id"]:
            raise protocol.ProtocolError("an answer came out of turn (did the notebook fork a process that kept running?)")
        return reply, result

    def run_cell(self, source, draw=True):
        """Run one cell; `draw=False` closes its figures without drawing them."""
        reply, _ = self.request({"op": "run", "source": source, "output_limit": self.judge.limits.output_chars, "draw": draw})
        if reply.get("timed_out"):
            reply.setdefault("outputs", []).append({"output_type": "error", "ename": "CellTimeoutError",
                                                    "evalue": f"this cell was stopped after {reply['timed_out']:.0f} s (time limit)", "traceback": []})
        return reply

    def snapshot(self):
        """A copy of this process as it is now (a Session sharing this one's time budget)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            reply, _ = self.request({"op": "snapshot"}, fds=[theirs.fileno()])
        finally:
            theirs.close()
        pid = reply.get("pid")
        if not reply.get("ok") or not isinstance(pid, int) or isinstance(pid, bool):
            ours.close()
            raise SessionEnded(f"the notebook's process could not be copied for the hidden checks: {reply.get('error', 'no process')}")
        self.snapshots.append(Session(self.judge, ours, pid, started=self.started, parent=self))
        return self.snapshots[-1]

    def close(self, reason=None):
        """End the process and everything it started but its live snapshots; remember why (for the student)."""
        if self.ended:
            return
        self.sock.close()
        if self.parent is not None:
            self.judge.kill(self.pid)
            status = "signal SIGKILL"
        else:
            status = self.judge.end(self.pid, keep=[s.pid for s in self.snapshots if not s.ended])
        self.ended = reason or _crash_reason(status)

    def release(self):
        """End the snapshots too, and everything left of the submission (call once its checks are done)."""
        self.close("finished")
        for snapshot in self.snapshots:
            snapshot.close("checked")
        self.judge.release(self.pid)


def _crash_reason(status):
    if status.startswith("signal SIGKILL"):
        return "the notebook's process was killed (SIGKILL): it probably ran out of memory or processes"
    if status.startswith("signal"):
        return f"the notebook's process crashed ({status.removeprefix('signal ')})"
    if status.startswith("exit"):
        return f"the notebook's process exited ({status}): do not call os._exit or exit the interpreter"
    return f"the notebook's process ended unexpectedly ({status})"


class RemoteStudent:
    """The `student` adapter for code living in a session: same interface as InProcessStudent.

    `support` are the syntax trees of the instructor's locked cells, whose definitions the
    course's helpers may use when they stand in for the student's (see helpers.StandIns).
    """

    def __init__(self, session, call_seconds=None, support=()):
        self.session = session
        self.call_seconds = call_seconds
        self.support = support
        self.stand_ins = {}

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, args, kwargs)

    def _ask(self, message, value=None, serve=None):
        try:
            return self.session.request(message, value, timeout=self.call_seconds, serve=serve)
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
        `substitutes` ({helper: course source}) run here, called back from the sandbox.
        """
        stand_ins = self._stand_ins(substitutes or {})
        serve = (lambda message, value, seconds: stand_ins.answer(message, value, seconds)) if stand_ins else None
        try:
            reply, value = self._ask({"op": "call", "name": name, "forbidden": list(forbidden), "helpers": sorted(substitutes or {})},
                                     (tuple(args), dict(kwargs or {})), serve)
        except protocol.ProtocolError as error:
            raise StudentError(str(error)) from None
        finally:
            if stand_ins:
                stand_ins.graphs.clear()
        value = _value_of(name, reply, value)
        if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], tuple) and len(value[1]) == 2
                and isinstance(value[1][0], (tuple, list)) and isinstance(value[1][1], dict)):
            raise StudentError(f"the notebook's process answered the call of `{name}` with something that is not a result")
        result, (args_after, kwargs_after) = value
        return Returned(result, tuple(args_after), kwargs_after)

    def _stand_ins(self, sources):
        if not sources:
            return None
        key = tuple(sorted(sources.items()))
        if key not in self.stand_ins:
            self.stand_ins[key] = StandIns(sources, self.support)
        return self.stand_ins[key]


def _value_of(name, reply, value):
    if reply.get("timed_out"):
        raise StudentError(f"`{name}` did not finish within {reply['timed_out']:.0f} s (time limit): look for an infinite loop or a very slow computation")
    if not reply.get("ok"):
        raise StudentError(str(reply.get("error", "unknown error"))[:ERROR_CHARS], raised=bool(reply.get("raised")))
    return value
