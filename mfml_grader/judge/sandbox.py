"""How the worker is started: inside bubblewrap when it can run here, else with limits only (loudly).

The bubblewrap sandbox has no network (a fresh network namespace: loopback only), its own PID, IPC
and UTS namespaces, a read-only view of the system, Python and the grading engine only (no course
directory: no grader_tests/, source/, gradebook or other submissions), and a private size-limited
tmpfs as its only writable place. It dies with the grader. Inside, each submission runs under its
own uid with rlimits on memory, processes, file size, CPU time and open files, and all its processes
are killed when it ends (see worker.py).
"""

import functools
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mfml_grader

log = logging.getLogger("mfml_grader.judge")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")


def _bind(path):
    path = Path(path)
    if path.is_symlink():
        return ["--symlink", os.readlink(path), str(path)]
    return ["--ro-bind", str(path), str(path)] if path.exists() else []


def bwrap_command(worker_argv, scratch_bytes):
    """The bubblewrap command line that runs `worker_argv` in the sandbox."""
    command = ["bwrap", "--die-with-parent", "--new-session",
               "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
               # the scratch tmpfs first: Python or the course may themselves live under /tmp
               "--size", str(scratch_bytes), "--tmpfs", "/tmp"]
    for folder in SYSTEM_DIRS:
        command += _bind(folder)
    package = Path(mfml_grader.__file__).resolve().parent
    folders = sorted({Path(sys.base_prefix).resolve(), Path(sys.prefix), package})
    parents = sorted({p for folder in folders for p in folder.parents if p != Path("/")}, key=lambda p: len(p.parts))
    for parent in parents:  # readable by the submission's uid (bwrap would make them 0700)
        command += ["--perms", "0755", "--dir", str(parent)]
    for folder in folders:
        command += ["--ro-bind", str(folder), str(folder)]
    command += ["--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp"]
    return command + ["--", *worker_argv]


@functools.lru_cache(maxsize=None)
def bwrap_works():
    """True when bubblewrap is installed and can create the sandbox on this machine."""
    if not shutil.which("bwrap"):
        return False
    probe = bwrap_command(["/bin/true"], 2**20)
    return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0


def worker_environment(sandboxed):
    """The zygote's environment: one thread (a thread pool started before a fork hangs the child)."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MFML_SANDBOXED": "1" if sandboxed else "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(Path(mfml_grader.__file__).resolve().parent.parent),
    }


def start_worker(control_fd, scratch_bytes, stderr, require_sandbox=False):
    """Start the zygote with `control_fd` as its control socket; returns (process, sandboxed?)."""
    argv = [sys.executable, "-m", "mfml_grader.judge.worker", str(control_fd)]
    sandboxed = bwrap_works()
    if sandboxed:
        argv = bwrap_command(argv, scratch_bytes)
    elif require_sandbox:
        raise RuntimeError("bubblewrap cannot run here and the sandbox is required (SandboxedExecute.require_sandbox)")
    else:
        log.warning("=" * 78)
        log.warning("SANDBOX UNAVAILABLE: bubblewrap (bwrap) is missing or cannot create namespaces.")
        log.warning("Student code runs with rlimits and its own uid only: it CAN read files this user")
        log.warning("can read and open network connections. Install bubblewrap to grade safely.")
        log.warning("=" * 78)
    process = subprocess.Popen(argv, pass_fds=(control_fd,), env=worker_environment(sandboxed),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                               start_new_session=True)
    return process, sandboxed
