"""The untrusted side: a warm process (the zygote) that forks one child per submission.

Runs inside the sandbox. The zygote imports torch, numpy, IPython and matplotlib once, then waits on
its control socket. For each submission the grader sends a fresh socket (SCM_RIGHTS); the zygote forks
a child that drops to the slot's own uid, sets its limits, and serves that socket: it runs the
notebook's cells in an IPython shell (the figures a cell leaves open become its PNG outputs, as in
JupyterLab) and answers calls of student functions with plain values. Nothing here is trusted:
grades are decided on the other side of the socket.
"""

import base64
import contextlib
import gc
import json
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time

import numpy  # noqa: F401 - imported once here so each submission starts warm
import torch
from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from traitlets import Type

from .. import figures
from ..student import InProcessStudent, StudentError, to_plain
from . import helpers, protocol
from .limits import IMAGE_CHARS, IMAGES_PER_CELL
from .outputs import IMAGE_TYPES

SCRATCH = "/tmp/submissions"


# -- running cells, with every output captured in order ---------------------------------------
class _Outputs:
    """nbformat outputs of the cell being run: `limit` characters of text, and IMAGES_PER_CELL images
    of at most IMAGE_CHARS each (the grader bounds them again, over the whole notebook too)."""

    def __init__(self, limit):
        self.items, self.limit, self.size, self.truncated = [], limit, 0, False
        self.images, self.images_dropped = 0, False

    def _room(self, n):
        if self.size + n > self.limit:
            if not self.truncated:
                self.truncated = True
                self.items.append({"output_type": "stream", "name": "stdout", "text": f"\n[output truncated: more than {self.limit} characters]\n"})
            return False
        self.size += n
        return True

    def stream(self, name, text):
        if not text or not self._room(len(text)):
            return
        last = self.items[-1] if self.items else None
        if last and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self.items.append({"output_type": "stream", "name": name, "text": text})

    def rich(self, output_type, data, metadata):
        data = {k: v for k, v in data.items() if isinstance(v, str)}
        image = sum(len(v) for k, v in data.items() if k in IMAGE_TYPES)
        if image and (image > IMAGE_CHARS or self.images == IMAGES_PER_CELL):
            if not self.images_dropped:
                self.images_dropped = True
                self.stream("stdout", f"\n[image(s) dropped: at most {IMAGES_PER_CELL} images per cell, {IMAGE_CHARS} characters each]\n")
        elif self._room(sum(len(v) for v in data.values()) - image):
            self.images += bool(image)
            self.items.append({"output_type": output_type, "data": data, "metadata": metadata or {}})


class _Stream:
    def __init__(self, shell, name):
        self.shell, self.name = shell, name

    def write(self, text):
        if self.shell.outputs is not None and isinstance(text, str):
            self.shell.outputs.stream(self.name, text)
        return len(text) if isinstance(text, str) else 0

    def flush(self):
        pass

    def isatty(self):
        return False


class _Publisher(DisplayPublisher):
    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
        if self.shell.outputs is not None:
            self.shell.outputs.rich("display_data", data, metadata)


class _ResultHook(DisplayHook):
    def start_displayhook(self):
        pass

    def write_output_prompt(self):
        pass

    def write_format_data(self, format_dict, md_dict=None):
        if self.shell.outputs is not None:
            self.shell.outputs.rich("execute_result", format_dict, md_dict)

    def finish_displayhook(self):
        pass


class CellShell(InteractiveShell):
    """An IPython shell whose outputs become nbformat outputs instead of terminal text."""

    outputs = None
    displayhook_class = Type(_ResultHook)
    display_pub_class = Type(_Publisher)

    def _showtraceback(self, etype, evalue, stb):
        if self.outputs is not None:
            self.outputs.items.append({"output_type": "error", "ename": getattr(etype, "__name__", str(etype)),
                                       "evalue": str(evalue)[:2000], "traceback": [line[:2000] for line in stb[-40:]]})

    def run(self, source, limit, draw=True):
        """Run one cell; its figures become PNG outputs (`draw`), or are closed undrawn (the grader has them)."""
        self.outputs = _Outputs(limit)
        sys.stdout, sys.stderr = _Stream(self, "stdout"), _Stream(self, "stderr")
        try:
            result = self.run_cell(source, store_history=True)
            if draw:
                self.show_figures()
            else:
                figures.close_figures()
        finally:
            outputs, self.outputs = self.outputs, None
        failed = result.error_before_exec is not None or result.error_in_exec is not None
        return {"outputs": outputs.items, "execution_count": self.execution_count - 1, "status": "error" if failed else "ok"}

    def show_figures(self):
        """The figures the cell left open, shown as JupyterLab shows them (a PNG display each), then closed."""
        try:
            drawn = figures.take_figures()
        except Exception:  # noqa: BLE001 - a figure that cannot be drawn is the cell's error, as in a kernel
            self.showtraceback()
            return
        for figure, image in drawn:
            self.outputs.rich("display_data", {"image/png": base64.b64encode(image).decode(), "text/plain": repr(figure)}, {})


# -- one submission ----------------------------------------------------------------------------
def _describe(value):
    if callable(value) and not isinstance(value, type):
        return "function"
    if type(value).__name__ == "module":
        return f"module:{value.__name__}"
    try:
        to_plain(value)
    except StudentError:
        return "object"
    return "data"


def serve(sock, shell):
    """Answer the grader's requests about one submission until it closes the socket.

    SIGINT (the grader's "time is up") interrupts student code only: it is blocked while a message
    is read or written, so a frame is never cut in half.
    """
    student = InProcessStudent(shell.user_ns)
    interrupt = {signal.SIGINT}
    owner = os.getpid()
    # a process the student forks must never answer the grader: it loses the socket at birth
    os.register_at_fork(after_in_child=lambda: os.getpid() != owner and _drop(sock))
    while True:
        signal.pthread_sigmask(signal.SIG_BLOCK, interrupt)
        fds = []
        try:
            message, value = protocol.receive(sock, allow_code=True, fds=fds)
        except EOFError:
            return
        signal.pthread_sigmask(signal.SIG_UNBLOCK, interrupt)
        try:
            reply, result = _answer(message, value, shell, student, sock, fds), None
            reply, result = reply if isinstance(reply, tuple) else (reply, None)
        except KeyboardInterrupt:
            reply, result = {"ok": False, "error": "interrupted: the time limit was reached"}, None
        except Exception as error:  # noqa: BLE001 - e.g. a result nested too deeply: this request fails, not the process
            reply, result = {"ok": False, "error": str(error) or type(error).__name__, "raised": getattr(error, "raised", False)}, None
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        signal.pthread_sigmask(signal.SIG_BLOCK, interrupt)
        if os.getpid() != owner:  # a forked copy of the submission came back here: it has no say
            os._exit(0)
        reply["id"] = message.get("id")
        try:
            frame = protocol.pack(reply, result)
        except Exception as error:  # noqa: BLE001 - ProtocolError, RecursionError, ...
            frame = protocol.pack({"ok": False, "error": f"the result cannot be sent to the grader: {error}", "id": reply["id"]})
        sock.sendall(frame)


def _drop(sock):
    with contextlib.suppress(OSError):
        sock.close()


def _answer(message, value, shell, student, sock, fds):
    """The reply to one request: a dict, or (dict, plain value)."""
    op = message["op"]
    if op == "files":
        for relative, data in value.items():
            path = os.path.normpath(os.path.join(os.getcwd(), relative))
            if path.startswith(os.getcwd() + os.sep):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as handle:
                    handle.write(data.numpy().tobytes())
        return {"ok": True}
    if op == "run":
        return {"ok": True, **shell.run(message["source"], message["output_limit"], bool(message.get("draw", True)))}
    if op == "names":
        return {"ok": True, "kinds": {n: _describe(shell.user_ns[n]) if n in shell.user_ns else "missing" for n in message["names"]}}
    if op == "get":
        return {"ok": True}, to_plain(shell.user_ns.get(message["name"]), f"`{message['name']}`")
    if op == "call":
        args, kwargs = value
        channel = helpers.Channel(sock, message.get("id"))
        stand_ins = {name: helpers.stand_in(channel, name) for name in message.get("helpers", [])}
        try:
            returned = student.invoke(message["name"], args, kwargs, forbidden=message["forbidden"], substitutes=stand_ins)
        finally:
            figures.close_figures()  # a figure drawn in a test's call is not shown, not even by the next cell
        return {"ok": True}, (returned.value, _inputs_as_data((returned.args, returned.kwargs)))
    if op == "defines":
        return {"ok": True, "defines": student.defines(message["name"])}
    if op == "snapshot":
        return {"ok": True, "pid": _snapshot(fds, shell)}
    raise protocol.ProtocolError(f"unknown request {op!r}")


def _snapshot(fds, shell):
    """Fork a copy of this submission as it is now, serving the socket that came with the request.

    The grader runs the hidden checks in such copies once the notebook has finished, so nothing
    student code sees during the checks can reach a cell's output. The fork hook of `serve`
    takes this process's own socket away from the copy. The copy computes on one thread, so
    the hidden checks give the same results whatever the number of threads the cells used.
    """
    if len(fds) != 1:
        raise protocol.ProtocolError("a snapshot needs exactly one socket")
    pid = os.fork()
    if pid == 0:
        try:
            torch.set_num_threads(1)  # the cells may have started OpenMP's pool, which does not survive a fork
            serve(socket.socket(fileno=fds[0]), shell)
        finally:
            os._exit(0)
    return pid


def _inputs_as_data(value):
    """The arguments after a call, as data: a generator becomes its state (uint8 tensor), a function None."""
    if isinstance(value, torch.Tensor):
        return to_plain(value)
    if isinstance(value, torch.Generator):
        return value.get_state()
    if isinstance(value, (tuple, list)):
        return (tuple if isinstance(value, tuple) else list)(_inputs_as_data(v) for v in value)
    if isinstance(value, dict):
        return {str(k): _inputs_as_data(v) for k, v in value.items()}
    if value is None or type(value) in (bool, int, float, str):
        return value
    return None


def _limit(limits):
    for name, value in limits.items():
        kind = getattr(resource, name)
        resource.setrlimit(kind, (value, value))


def child(sock, slot_uid, limits, threads, scratch_bytes, shell):
    """Become one submission's process: own session, own uid, limits, scratch dir; then serve.

    Nothing of the zygote reaches it but the warm interpreter: every inherited file descriptor but
    its socket is closed, and (in the sandbox) it gets a private mount and IPC namespace with a
    fresh scratch tmpfs, so no file, shared memory segment or message queue outlives it for the next one.
    """
    os.setsid()
    fd = sock.fileno()
    devnull = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(devnull, std)
    os.closerange(3, fd)
    os.closerange(fd + 1, 1 << 20)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    isolated = os.getuid() == 0 and slot_uid and _private_namespaces(scratch_bytes, slot_uid)
    scratch = SCRATCH if isolated else os.path.join(SCRATCH, str(os.getpid()))
    if not isolated:
        os.makedirs(scratch, mode=0o700)
    if os.getuid() == 0 and slot_uid:
        os.chown(scratch, slot_uid, slot_uid)
        os.setgroups([])
        os.setgid(slot_uid)
        os.setuid(slot_uid)
    else:
        limits = {k: v for k, v in limits.items() if k != "RLIMIT_NPROC"}  # would count the grader's own processes
    _limit(limits)
    os.chdir(scratch)
    os.environ["HOME"] = os.environ["TMPDIR"] = scratch  # tempfile and friends write here
    tempfile.tempdir = None
    torch.set_num_threads(threads)  # the zygote never started a thread pool, so this one is fresh
    serve(sock, shell)
    os._exit(0)


CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 16384, 1 << 18


def _private_namespaces(scratch_bytes, uid):
    """A mount and IPC namespace of its own with a fresh tmpfs on SCRATCH; False where that cannot be had.

    Only inside bubblewrap (its own mount namespace already): on a bare host a mount here could
    reach the host's mount table.
    """
    if os.environ.get("MFML_SANDBOXED") != "1":
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS | CLONE_NEWIPC) != 0:
        return False
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    options = f"size={scratch_bytes},mode=0700,uid={uid},gid={uid}".encode()
    return libc.mount(b"tmpfs", SCRATCH.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options) == 0


def _members(uid, sid):
    """Pids of a submission's processes: those of its uid (its own, when run as root), else of its session."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if (os.stat(f"/proc/{entry}").st_uid == uid) if uid else os.getsid(int(entry)) == sid:
                    pids.append(int(entry))
    return pids


def sweep(uid, sid, keep=()):
    """Kill every process of a submission but those in `keep` (its snapshots).

    A fork bomb forks while it is being killed: each round stops the processes it finds (a stopped
    process cannot fork), then kills them, until none is left. Without `keep`, and with a uid of its
    own, a process of that uid kills them all at once (`kill(-1)`).
    """
    keep = set(keep)
    for _ in range(200):
        targets = [pid for pid in _members(uid, sid) if pid not in keep and pid != os.getpid()]
        if not targets:
            return
        if uid and not keep:
            reaper = os.fork()
            if reaper == 0:
                os.setuid(uid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(-1, signal.SIGKILL)
                os._exit(0)
            os.waitpid(reaper, 0)
        else:
            for signum in (signal.SIGSTOP, signal.SIGKILL):
                for pid in targets:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signum)
        _reap_orphans()


def _reap_orphans():
    """Collect the zombies of killed processes: the zygote is their parent or their reaper."""
    while True:
        try:
            done, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not done:
            return


def warm_up():
    """Pay once, here, the first-use costs every submission would pay again after its fork.

    The first torch optimizer imports torch._dynamo (about 1 s); the first linear-algebra call,
    backward pass, tensor formatting and figure have set-up costs of their own. Nothing here draws
    random numbers or defines a name in the shell: each submission still starts like a fresh kernel, with
    an unused random generator and an empty namespace (tests/test_judge_session.py).
    """
    w = torch.ones(4, 4, dtype=torch.float64, requires_grad=True)
    (w @ w).softmax(-1).log().sum().backward()
    optimizer = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    optimizer.step()
    torch.optim.AdamW([w], lr=0.1).step()
    symmetric = torch.eye(4) + 0.5
    for decompose in (torch.linalg.svd, torch.linalg.eigh, torch.linalg.eigvalsh, torch.linalg.qr, torch.linalg.inv):
        decompose(symmetric)
    f"{symmetric.std():.2f} {symmetric} {symmetric.round(decimals=2).tolist()}"
    _warm_matplotlib()


def _warm_matplotlib():
    """Import pyplot (Agg, MPLBACKEND) and draw a figure of the kinds the notebooks make, so a figure
    cell pays only its own drawing: fonts, mathtext, log axes, layout, colour maps and the PNG writer.

    matplotlib keeps its font list in MPLCONFIGDIR: a folder of the zygote's own (in the sandbox,
    on its private /tmp), read here once, so no submission needs to write there. The fonts drawn
    with keep their files open in matplotlib's caches; a submission's process closes every file it
    inherits (FreeType would then read glyphs from a closed or reused descriptor), so the caches
    are emptied and no font outlives the warm-up.
    """
    os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="matplotlib-")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager, mathtext

    fig, (curves, image) = plt.subplots(1, 2, figsize=(9, 4), constrained_layout=True)
    curves.loglog([1, 10, 100], [1.0, 0.1, 0.01], label=r"$h^2$")
    curves.set(title=r"$\|x\|_2$", xlabel="step", ylabel="loss")
    curves.legend()
    fig.colorbar(image.imshow([[0.0, 1.0], [1.0, 0.0]]), ax=image)
    figures.take_figures()
    del fig, curves, image
    mathtext.MathTextParser._parse_cached.cache_clear()
    font_manager._get_font.cache_clear()
    gc.collect()
    shutil.rmtree(os.environ["MPLCONFIGDIR"], ignore_errors=True)  # the font list is in memory now; leave no folder behind


def zygote(control_fd):
    """Serve the control socket (SOCK_SEQPACKET, one JSON message per packet): fork and end children."""
    control = socket.socket(fileno=control_fd)
    _become_subreaper()
    torch.set_num_threads(1)  # OpenMP's thread pool does not survive fork(): none may exist before one
    shell = CellShell.instance(colors="NoColor", history_length=0)
    shell.history_manager.enabled = False
    warm_up()
    os.makedirs(SCRATCH, exist_ok=True)
    control.sendall(json.dumps({"ready": True, "pid": os.getpid(), "uid": os.getuid()}).encode())
    children = {}
    while True:
        try:
            raw, fds, _, _ = socket.recv_fds(control, 65536, 1)
        except OSError:
            break
        if not raw:
            break
        message = json.loads(raw)
        if message["op"] == "fork":
            sock = socket.socket(fileno=fds[0])
            pid = os.fork()
            if pid == 0:
                try:
                    control.close()
                    child(sock, message["uid"], message["limits"], message["threads"], message["scratch_bytes"], shell)
                finally:
                    os._exit(70)  # whatever happens in a submission's process, it never runs the zygote's loop
            sock.close()
            children[pid] = message["uid"]
            control.sendall(json.dumps({"pid": pid}).encode())
        elif message["op"] in ("interrupt", "kill"):
            pid = message.get("pid")
            if isinstance(pid, int) and _session_of(pid) in children:  # only a submission's processes
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGINT if message["op"] == "interrupt" else signal.SIGKILL)
            control.sendall(b"{}")
        elif message["op"] == "end":  # the submission's process, and all it started but its snapshots
            pid, keep = message["pid"], set(message.get("keep", []))
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            status = _reap(pid)
            sweep(children.get(pid), pid, keep)
            if not keep:
                _release(children, pid)
            control.sendall(json.dumps({"status": status}).encode())
        elif message["op"] == "release":  # what is left of a submission after its hidden checks
            _release(children, message["pid"])
            control.sendall(b"{}")
        for fd in fds[1:]:
            os.close(fd)


def _session_of(pid):
    with contextlib.suppress(OSError):
        return os.getsid(pid)
    return None


def _release(children, pid):
    if pid in children:
        sweep(children.pop(pid), pid)
        shutil.rmtree(os.path.join(SCRATCH, str(pid)), ignore_errors=True)


def _become_subreaper():
    """Orphans of a submission come to the zygote (to be reaped), even outside the sandbox."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap(pid, wait=2.0):
    """How the child ended: 'exit N', 'signal NAME', or 'running'."""
    deadline = time.monotonic() + wait
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return "gone"
        if done:
            if os.WIFSIGNALED(status):
                return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
            return f"exit {os.WEXITSTATUS(status)}"
        if time.monotonic() > deadline:
            return "running"
        time.sleep(0.01)


if __name__ == "__main__":
    zygote(int(sys.argv[1]))
