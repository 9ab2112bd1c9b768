"""The course hub (`make hub`): this course on a local JupyterHub, as an instructor and students use it.

    python -m mfml_grader hub [--port N] [--prefix P] [--state DIR] [--students N] [--no-grader] [--max-graded N]
                              [--assignments A ...]
    python -m mfml_grader hub-clean [--state DIR]

Run as root, `hub` sets up (idempotently) and then runs JupyterHub in the foreground until Ctrl-C:

- real unix users `<prefix>instructor` and `<prefix>student1..N`, in the group `<prefix>course`,
  with random passwords (printed; JupyterHub's PAMAuthenticator checks them), their homes in
  `<state>/home/`;
- nbgrader's filesystem exchange in `<state>/exchange` (world-writable with the sticky bit, as
  nbgrader's docs ask of a shared exchange);
- the instructor's course directory `~<prefix>instructor/math-foundations-ml` (a copy of the
  course: source/, release/, grader_tests/, demo/, nbgrader_config.py), its gradebook filled by the
  course's own release step and the assignments released into the exchange, all as the instructor;
- per-user Jupyter configuration: the instructor's nbgrader config names the course directory (and
  loads its nbgrader_config.py), the students' name the course and the exchange and turn
  formgrader, the course list and "create assignment" off for them;
- the hub (LocalProcessSpawner on loopback, single-user servers from this virtualenv's
  `jupyterhub-singleuser`, JupyterLab by default) with its sqlite database, cookie secret and the
  logins in `<state>/hub/` (root only), and the managed service `grader` (`python -m mfml_grader
  serve` in the course directory, as root) unless `--no-grader`; `--max-graded N` sets its limit of
  graded submissions per student and assignment (`c.GradingService.max_graded` of the course);
- the repository the hub's users run the course environment from keeps only that environment
  readable by them: its other top-level entries (source/, grader_tests/, demo/, .git/, grading
  output) lose every permission for others, so no student reads a solution or a hidden check there.

Everything it creates is recorded in `<state>/hub/created.json` before it is created; `hub-clean`
stops what still runs of that hub, then removes exactly the recorded users that carry the recorded
prefix, the recorded group and the state folder (homes included).
"""

import argparse
import contextlib
import json
import os
import grp
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from . import course

COURSE_ID = "math-foundations-ml"
DEFAULT_STATE = Path("/srv/mfml-hub")
DEFAULT_PREFIX = "mfml-"
REPO = Path(__file__).resolve().parent.parent
CONFIG_TEMPLATE = REPO / "hub" / "jupyterhub_config.py"
PROXY = REPO / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
SYSTEM_TOOLS = ("useradd", "userdel", "groupadd", "groupdel", "chpasswd", "runuser")
# Switched off for students: what an instructor grades with (nbgrader's docs: per-user extensions).
INSTRUCTOR_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")
ENVIRONMENT = {".venv", "mfml_grader", "mfml_grader.egg-info", "hub", "pyproject.toml"}   # what other users may read
LIMIT_MARK = "# set by make hub (--max-graded)"
INSTRUCTOR_LAB_PLUGINS = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:course-list", "@jupyter/nbgrader:create-assignment")


class HubError(Exception):
    """A reason not to go on, said to the person running the hub."""


@dataclass
class Layout:
    """Where a hub keeps its state."""

    state: Path
    prefix: str = DEFAULT_PREFIX
    students: int = 3

    @property
    def hub_dir(self):
        return self.state / "hub"

    @property
    def exchange(self):
        return self.state / "exchange"

    @property
    def homes(self):
        return self.state / "home"

    @property
    def record_file(self):
        return self.hub_dir / "created.json"

    @property
    def logins_file(self):
        return self.hub_dir / "logins.json"

    @property
    def settings_file(self):
        return self.hub_dir / "settings.json"

    @property
    def group(self):
        return f"{self.prefix}course"

    @property
    def instructor(self):
        return f"{self.prefix}instructor"

    @property
    def student_names(self):
        return [f"{self.prefix}student{i}" for i in range(1, self.students + 1)]

    @property
    def users(self):
        return [self.instructor, *self.student_names]

    def home(self, user):
        return self.homes / user

    @property
    def course_dir(self):
        return self.home(self.instructor) / COURSE_ID


@dataclass
class Record:
    """What a hub created (written before each thing is created): what hub-clean may remove."""

    path: Path
    prefix: str = DEFAULT_PREFIX
    group: str = ""
    users: list = field(default_factory=list)
    released: list = field(default_factory=list)

    @classmethod
    def load(cls, path):
        data = json.loads(Path(path).read_text())
        return cls(Path(path), data["prefix"], data.get("group", ""), data.get("users", []), data.get("released", []))

    def save(self):
        data = {"prefix": self.prefix, "group": self.group, "users": self.users, "released": self.released}
        _write_private(self.path, json.dumps(data, indent=1) + "\n")


def _write_private(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def _run(command, **kwargs):
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise HubError(f"`{' '.join(map(str, command))}` failed ({done.returncode}):\n{(done.stdout + done.stderr).strip()[-3000:]}")
    return done


def _exists(kind, name):
    try:
        (pwd.getpwnam if kind == "user" else grp.getgrnam)(name)
        return True
    except KeyError:
        return False


# --- checks -------------------------------------------------------------------------------------

def require_root():
    if os.geteuid() != 0:
        raise HubError("the course hub creates unix users and runs JupyterHub as root: run it as root (sudo make hub)")


def missing_tools():
    """System programs the hub needs and this machine lacks."""
    return [tool for tool in SYSTEM_TOOLS if shutil.which(tool) is None]


def not_traversable(path):
    """The first folder on the way to `path` (or `path` itself) that other users cannot enter, or None."""
    path = Path(path).absolute()
    for folder in [*reversed(path.parents), path]:
        mode = folder.stat().st_mode
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return folder
    return None


def environment_problem(venv=None):
    """Why the course environment (this virtualenv, the repository) cannot serve other users, or ''."""
    venv = Path(venv or sys.prefix)
    python = venv / "bin" / "python"
    real = python.resolve()
    for what, path in (("the repository", REPO), ("the virtualenv", venv), ("the virtualenv's Python", real.parent)):
        blocked = not_traversable(path)
        if blocked:
            return (f"{what} ({path}) is not reachable by other users: {blocked} is not traversable (o+x). The students' servers "
                    "run as their own users from this repository's virtualenv: clone the repository where every user can read it "
                    "(e.g. under /srv or /tmp, not /root), and build the virtualenv from a Python every user can run "
                    "(make VENV_PYTHON=/usr/bin/python3.11).")
    if not os.access(real, os.X_OK) or not real.stat().st_mode & stat.S_IXOTH:
        return f"the virtualenv's Python {real} is not executable by other users: rebuild the virtualenv with make VENV_PYTHON=/usr/bin/python3.11"
    if _exists("user", "nobody") and shutil.which("runuser"):
        probe = subprocess.run(["runuser", "-u", "nobody", "--", str(python), "-c", "import jupyterhub.singleuser, nbgrader, mfml_grader"],
                               capture_output=True, text=True, cwd="/", timeout=300)
        if probe.returncode != 0:
            return (f"another user cannot use the course environment ({python} as `nobody`: "
                    f"{(probe.stdout + probe.stderr).strip()[-600:]}): make sure the repository and {venv} are readable by every user")
    return ""


# --- setup --------------------------------------------------------------------------------------

def _prepare_state(layout):
    """The state folder (0755, reachable by every user), and its record of what this hub created."""
    state = layout.state
    if state.exists() and any(state.iterdir()) and not layout.record_file.exists():
        raise HubError(f"{state} exists and is not a course hub's state folder (no {layout.record_file.name}): choose another --state")
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o755)
    blocked = not_traversable(state)
    if blocked:
        raise HubError(f"{state} is not reachable by the hub's users ({blocked} is not traversable): choose a --state other users can enter")
    layout.hub_dir.mkdir(exist_ok=True)
    layout.hub_dir.chmod(0o700)
    if layout.record_file.exists():
        record = Record.load(layout.record_file)
        if record.prefix != layout.prefix:
            raise HubError(f"{state} belongs to a hub with the prefix {record.prefix!r}: run hub-clean first, or use --prefix {record.prefix}")
        return record
    record = Record(layout.record_file, layout.prefix)
    record.save()
    return record


def _create_group(layout, record):
    if _exists("group", layout.group):
        if record.group != layout.group:
            raise HubError(f"the group {layout.group} exists and this hub did not create it: choose another --prefix")
        return
    record.group = layout.group
    record.save()
    _run(["groupadd", layout.group])


def _create_users(layout, record):
    """Create the users this hub needs (or keep those it created before); {user: password}."""
    logins = json.loads(layout.logins_file.read_text()) if layout.logins_file.exists() else {}
    layout.homes.mkdir(exist_ok=True)
    layout.homes.chmod(0o755)
    for user in layout.users:
        if _exists("user", user):
            if user not in record.users:
                raise HubError(f"the user {user} exists and this hub did not create it: choose another --prefix")
        else:
            record.users.append(user)
            record.save()
            _run(["useradd", "--create-home", "--home-dir", str(layout.home(user)), "--shell", "/bin/bash",
                  "--groups", layout.group, "--comment", f"{COURSE_ID} course hub", user])
            logins.pop(user, None)
        if user not in logins:
            logins[user] = secrets.token_urlsafe(9)
            _run(["chpasswd"], input=f"{user}:{logins[user]}\n")
            _write_private(layout.logins_file, json.dumps(logins, indent=1) + "\n")
        layout.home(user).chmod(0o700)
    return {user: logins[user] for user in layout.users}


def _chown_tree(path, user):
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.lchown(name, entry.pw_uid, entry.pw_gid)


def _write_as(user, path, text):
    """Write a file in `user`'s home, owned (with the folders made for it) by that user."""
    entry, path = pwd.getpwnam(user), Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    for owned in [path, *path.parents]:
        if owned == Path(entry.pw_dir):
            break
        os.lchown(owned, entry.pw_uid, entry.pw_gid)


def _user_configs(layout):
    """Each user's Jupyter configuration: the course for everyone, the grading tools for the instructor only."""
    exchange = str(layout.exchange)
    course_config = layout.course_dir / "nbgrader_config.py"
    _write_as(layout.instructor, layout.home(layout.instructor) / ".jupyter" / "nbgrader_config.py", (
        "# The course hub's instructor (make hub): formgrader and nbgrader commands run anywhere use this course.\n"
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(layout.course_dir)!r}\n"
        f"load_subconfig({str(course_config)!r})  # noqa: F821 - the course's own configuration\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.Exchange.root = {exchange!r}\n"))
    for student in layout.student_names:
        jupyter = layout.home(student) / ".jupyter"
        _write_as(student, jupyter / "nbgrader_config.py", (
            "# The course hub's student (make hub): the Assignments tab lists this course's assignments.\n"
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
            f"c.Exchange.root = {exchange!r}\n"))
        _write_as(student, jupyter / "jupyter_server_config.json", json.dumps(
            {"ServerApp": {"jpserver_extensions": {name: False for name in INSTRUCTOR_SERVER_EXTENSIONS}}}, indent=2) + "\n")
        plugins = {name: True for name in INSTRUCTOR_LAB_PLUGINS}
        _write_as(student, jupyter / "labconfig" / "page_config.json",
                  json.dumps({"disabledExtensions": plugins, "lockedExtensions": plugins}, indent=2) + "\n")


def user_env(user, venv, exchange):
    """The environment a hub user's commands run in."""
    entry = pwd.getpwnam(user)
    return {"HOME": entry.pw_dir, "USER": user, "LOGNAME": user, "SHELL": entry.pw_shell, "LANG": "C.UTF-8",
            "PATH": f"{Path(venv) / 'bin'}:/usr/local/bin:/usr/bin:/bin", "MFML_EXCHANGE_ROOT": str(exchange)}


def run_as(user, command, cwd, venv, exchange, timeout=1800):
    """Run `command` as `user` (runuser) in `cwd`, in the hub's environment for that user."""
    env = user_env(user, venv, exchange)
    return _run(["runuser", "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), *map(str, command)],
                cwd=cwd, timeout=timeout)


def _course(layout, record, venv, assignments, out):
    """The instructor's course directory, its gradebook and the assignments released into the exchange."""
    layout.exchange.mkdir(exist_ok=True)
    layout.exchange.chmod(0o1777)  # world-writable, sticky: nbgrader's shared exchange
    if not (layout.course_dir / "nbgrader_config.py").exists():
        course.copy_course(REPO, layout.course_dir)
        shutil.copytree(REPO / "release", layout.course_dir / "release", ignore=shutil.ignore_patterns("__pycache__"))
        _chown_tree(layout.course_dir, layout.instructor)
    wanted = [a for a in (assignments if assignments is not None else course.assignments(REPO)) if a not in record.released]
    if wanted:
        print(f"releasing {', '.join(wanted)} into the exchange as {layout.instructor} ...", file=out, flush=True)
        python = Path(venv) / "bin" / "python"
        run_as(layout.instructor, [python, "-m", "mfml_grader", "release", *wanted], layout.course_dir, venv, layout.exchange)
        for assignment in wanted:
            run_as(layout.instructor, [Path(venv) / "bin" / "nbgrader", "release_assignment", assignment, "--force"],
                   layout.course_dir, venv, layout.exchange)
            record.released.append(assignment)
            record.save()


def _protect_repository():
    """Other users keep what running the environment needs (the virtualenv, the package): nothing else of the repository."""
    for entry in REPO.iterdir():
        if entry.name not in ENVIRONMENT and not entry.is_symlink():
            entry.chmod(stat.S_IMODE(entry.stat().st_mode) & ~0o007)


def _grading_limit(layout, max_graded):
    """The service's limit in the course's nbgrader_config.py (one marked line, replaced on every run)."""
    config = layout.course_dir / "nbgrader_config.py"
    lines = [line for line in config.read_text().splitlines() if not line.endswith(LIMIT_MARK)]
    if max_graded is not None:
        lines.append(f"c.GradingService.max_graded = {int(max_graded)}  {LIMIT_MARK}")
    config.write_text("\n".join(lines) + "\n")


def setup(layout, venv=None, assignments=None, out=sys.stdout, max_graded=None):
    """Everything the hub needs besides JupyterHub itself (idempotent); returns {user: password}."""
    require_root()
    missing = missing_tools()
    if missing:
        raise HubError(f"missing system programs: {', '.join(missing)} (Debian's passwd and util-linux packages)")
    venv = Path(venv or sys.prefix)
    problem = environment_problem(venv)
    if problem:
        raise HubError(problem)
    record = _prepare_state(layout)
    _create_group(layout, record)
    logins = _create_users(layout, record)
    _protect_repository()
    _course(layout, record, venv, assignments, out)
    _grading_limit(layout, max_graded)
    _user_configs(layout)
    return logins


# --- running ------------------------------------------------------------------------------------

def free_port(preferred=None):
    """`preferred` when it is free on loopback, else a free port of this moment."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]


def write_settings(layout, port, venv=None, grader=True):
    """The settings hub/jupyterhub_config.py reads (MFML_HUB_SETTINGS)."""
    venv = Path(venv or sys.prefix)
    settings = {
        "port": port, "hub_api_port": free_port(), "proxy_api_port": free_port(), "hub_dir": str(layout.hub_dir),
        "proxy": str(PROXY), "venv": str(venv), "users": layout.users, "instructor": layout.instructor,
        "exchange": str(layout.exchange), "course_dir": str(layout.course_dir), "grader": bool(grader),
    }
    _write_private(layout.settings_file, json.dumps(settings, indent=1) + "\n")
    return settings


def hub_is_up(url, timeout=2):
    try:
        with urllib.request.urlopen(f"{url}hub/api", timeout=timeout) as answer:
            return answer.status == 200
    except OSError:
        return False


def start(layout, port, venv=None, grader=True, log=None):
    """Start JupyterHub (a new process group) for a set-up layout; returns (process, url)."""
    if not PROXY.exists():
        raise HubError(f"configurable-http-proxy is not installed in {PROXY.parent.parent}: run `make hub-proxy` (npm)")
    venv = Path(venv or sys.prefix)
    write_settings(layout, port, venv, grader)
    env = dict(os.environ, MFML_HUB_SETTINGS=str(layout.settings_file), PATH=f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    process = subprocess.Popen([str(venv / "bin" / "jupyterhub"), "-f", str(CONFIG_TEMPLATE)], cwd=layout.hub_dir, env=env,
                               stdout=log, stderr=subprocess.STDOUT if log else None, start_new_session=True)
    return process, f"http://127.0.0.1:{port}/"


def wait_until_up(process, url, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise HubError(f"JupyterHub exited with status {process.returncode} (see its log)")
        if hub_is_up(url):
            return
        time.sleep(0.5)
    raise HubError(f"JupyterHub did not answer at {url} within {seconds} s")


def stop(process, seconds=60):
    """Stop JupyterHub as Ctrl-C does (it stops the single-user servers, the services and the proxy), then harder."""
    for sig, wait in ((signal.SIGINT, seconds), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)


def banner(url, layout, logins, grader):
    lines = [f"Course hub: {url}   (Ctrl-C stops it; `make hub-clean` removes its users and {layout.state})", "",
             f"  {'login':<28} password", f"  {layout.instructor:<28} {logins[layout.instructor]}   (instructor: Nbgrader > Formgrader)"]
    lines += [f"  {s:<28} {logins[s]}   (student: Nbgrader > Assignment List)" for s in layout.student_names]
    lines += ["", f"  exchange: {layout.exchange}   course: {layout.course_dir}",
              f"  grading service: {'python -m mfml_grader serve (JupyterHub service `grader`)' if grader else 'off (--no-grader)'}"]
    return "\n".join(lines)


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def run(args):
    layout = Layout(Path(args.state), args.prefix, args.students)
    logins = setup(layout, assignments=args.assignments, max_graded=args.max_graded)
    port = args.port or free_port(8000)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # Ctrl-C, even where a shell started it with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupted)
    process, url = start(layout, port, grader=args.grader)   # in its own session: Ctrl-C reaches it through stop()
    try:
        wait_until_up(process, url)
        print("\n" + banner(url, layout, logins, args.grader) + "\n", flush=True)
        return process.wait()
    except KeyboardInterrupt:
        print("\nstopping the hub and its servers ...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop(process)


# --- cleaning -----------------------------------------------------------------------------------

def _processes_of(uid):
    import psutil

    found = []
    for process in psutil.process_iter(["uids"]):
        uids = process.info["uids"]
        if uids and uid in (uids.real, uids.effective):
            found.append(process)
    return found


def _stop_running_hub(layout):
    """A hub of this state folder still running (its pid file): stop it and what it started."""
    import psutil

    for name in ("jupyterhub.pid", "proxy.pid"):
        pid_file = layout.hub_dir / name
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            process = psutil.Process(int(pid_file.read_text().strip()))
            if any(part.endswith(("jupyterhub", "configurable-http-proxy")) or "configurable-http-proxy" in part for part in process.cmdline()):
                process.send_signal(signal.SIGINT if name == "jupyterhub.pid" else signal.SIGTERM)
                with contextlib.suppress(psutil.TimeoutExpired):
                    process.wait(timeout=60)
                with contextlib.suppress(psutil.Error):
                    process.kill()


def clean(state, out=sys.stdout):
    """Remove what the hub at `state` recorded it created: its users (with its prefix), its group, the state folder."""
    import psutil

    require_root()
    layout = Layout(Path(state))
    if not layout.record_file.exists():
        if layout.state.exists():
            raise HubError(f"{layout.state} holds no record of a course hub ({layout.record_file.name}): nothing removed")
        print(f"nothing to clean: {layout.state} does not exist", file=out)
        return
    record = Record.load(layout.record_file)
    layout.prefix = record.prefix
    _stop_running_hub(layout)
    for user in record.users:
        if not user.startswith(record.prefix) or not _exists("user", user):
            continue
        uid = pwd.getpwnam(user).pw_uid
        for process in _processes_of(uid):
            with contextlib.suppress(psutil.Error):
                process.terminate()
        _, alive = psutil.wait_procs(_processes_of(uid), timeout=10)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(alive, timeout=10)
        _run(["userdel", user])
        print(f"removed user {user}", file=out)
    if record.group and record.group.startswith(record.prefix) and _exists("group", record.group):
        _run(["groupdel", record.group])
        print(f"removed group {record.group}", file=out)
    shutil.rmtree(layout.state)
    print(f"removed {layout.state}", file=out)


# --- command line -------------------------------------------------------------------------------

def main(argv):
    parser = argparse.ArgumentParser(prog="python -m mfml_grader", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["hub", "hub-clean"])
    parser.add_argument("--state", default=os.environ.get("MFML_HUB_STATE", str(DEFAULT_STATE)), help=f"the hub's folder (default {DEFAULT_STATE})")
    parser.add_argument("--port", type=int, default=0, help="the hub's port on 127.0.0.1 (default: 8000 when free, else a free port)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"prefix of the unix users and group the hub creates (default {DEFAULT_PREFIX})")
    parser.add_argument("--students", type=int, default=3, help="how many students (default 3)")
    parser.add_argument("--assignments", nargs="*", default=None, help="assignments to release (default: all)")
    parser.add_argument("--no-grader", dest="grader", action="store_false", help="without the continuous grading service")
    parser.add_argument("--max-graded", type=int, default=None, help="graded submissions per student and assignment within the "
                        "service's window (default: the course's c.GradingService.max_graded)")
    args = parser.parse_args(argv)
    try:
        if args.command == "hub-clean":
            clean(args.state)
            return 0
        return run(args)
    except HubError as error:
        print(f"make hub: {error}", file=sys.stderr)
        return 2
