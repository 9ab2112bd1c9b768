"""Real servers for the tests, started on loopback in a folder the test owns and stopped after it.

Each installs its Debian packages when missing (as root, without recommends) and otherwise skips
with a message that says what is missing. Ports are free ports of this moment, folders are the
test's own: other runs on the same host are left alone.
"""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def apt_install(*packages):
    """Install Debian packages (no recommends) when running as root; False when that is not possible."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]):
        if subprocess.run(command, env=env, capture_output=True, timeout=900).returncode != 0:
            return False
    return True


def _postgres_bin():
    """The folder of PostgreSQL's server programs (initdb, pg_ctl), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


@contextlib.contextmanager
def postgres(folder):
    """A throwaway PostgreSQL cluster in `folder` on a loopback port; yields the URL of its `gradebook` database.

    PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user the package
    creates. Only loopback TCP, trust authentication (nobody else can reach it), fsync off (a test's
    data need not survive a power cut).
    """
    bin_dir = _postgres_bin()
    if bin_dir is None and apt_install("postgresql"):
        bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed and could not be (Debian's `postgresql`; needs root and apt)")
    folder = Path(folder)
    data = folder / "data"
    folder.mkdir(parents=True, exist_ok=True)
    as_user = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        folder.chmod(0o700)
        parent = folder.parent
        while parent != parent.parent and not (parent.stat().st_mode & 0o001):   # postgres must reach the folder
            parent.chmod(parent.stat().st_mode | 0o001)
            parent = parent.parent
        as_user = ["runuser", "-u", "postgres", "--"]

    def run(*command):
        result = subprocess.run([*as_user, *command], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    port = free_port()
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "mfml", "-A", "trust", "--no-instructions")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=200"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "start")
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mfml", "gradebook")
        yield f"postgresql://mfml@127.0.0.1:{port}/gradebook"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=120)
        deadline = time.monotonic() + 30
        while (data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.2)


SLURM_PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")


def _wait_for(check, seconds, what, logs=()):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    tails = "\n".join(f"--- {log}:\n{Path(log).read_text()[-2000:]}" for log in logs if Path(log).exists())
    raise RuntimeError(f"{what} did not happen within {seconds} s\n{tails}")


@contextlib.contextmanager
def slurm(folder):
    """A one-node Slurm cluster on this host: its own munge daemon, slurmctld and slurmd, with their
    configuration, keys, state and logs in `folder`, on free loopback ports. Yields the environment
    (SLURM_CONF) under which sbatch and squeue talk to it; everything is stopped after."""
    if not all(shutil.which(p) for p in ("slurmctld", "slurmd", "sbatch", "munged")) and not apt_install(*SLURM_PACKAGES):
        pytest.skip(f"Slurm is not installed and could not be (Debian's {', '.join(SLURM_PACKAGES)}; needs root and apt)")
    if os.geteuid() != 0:
        pytest.skip("a one-node Slurm cluster needs root here (slurmd runs jobs as their users)")
    folder = Path(folder)
    for sub in ("state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    key, socket_path = folder / "munge.key", folder / "munge.socket"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    node = f"mfml{os.getpid()}"
    conf = folder / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=mfmltest",
        f"SlurmctldHost={socket.gethostname()}(127.0.0.1)",
        f"SlurmctldPort={free_port()}",
        f"SlurmdPort={free_port()}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={socket_path}",
        f"StateSaveLocation={folder / 'state'}",
        f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "SchedulerType=sched/builtin",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "ReturnToService=2",
        "MpiDefault=none",
        "SlurmctldParameters=enable_configless",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory=16000 State=UNKNOWN",
        f"PartitionName=mfml Nodes={node} Default=YES MaxTime=INFINITE State=UP",
    ]) + "\n")
    env = dict(os.environ, SLURM_CONF=str(conf))
    daemons = []
    try:
        daemons.append(subprocess.Popen(["munged", "-F", "--force", f"--socket={socket_path}", f"--key-file={key}",
                                         f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
                                         f"--seed-file={folder / 'munge.seed'}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_for(socket_path.exists, 30, "munged's socket", [folder / "munged.log"])
        daemons.append(subprocess.Popen(["slurmctld", "-D", "-f", str(conf)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        daemons.append(subprocess.Popen(["slurmd", "-D", "-f", str(conf), "-N", node], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def node_idle():
            result = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], env=env, capture_output=True, text=True, timeout=30)
            return result.stdout.strip() == "idle"

        _wait_for(node_idle, 60, "the Slurm node becoming idle", [folder / "slurmctld.log", folder / "slurmd.log"])
        yield env
    finally:
        subprocess.run(["scancel", "--full", "--quiet", "--partition=mfml"], env=env, capture_output=True, timeout=30)
        for daemon in reversed(daemons):
            daemon.terminate()
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
