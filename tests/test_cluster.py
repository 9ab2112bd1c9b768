"""Batch grading on Dask (`autograde --cluster`): the scores of the local process pool, and nothing lost
when workers die.

The test runs its own Dask scheduler and two workers (each under a nanny, which restarts a worker
that dies), hands its address to `autograde --cluster tcp://...` in another process, and kills the
worker that is grading chosen submissions: `ada`'s once (a retry, then the full grade) and `bomb`'s
every time (after `ALLOWED_FAILURES + 1` dead workers: 0 points, with the reason where the student
reads it). Every other submission gets exactly the pool's scores.
"""

import os
import signal
import threading
import time

import dask
import pytest
from distributed import Client, LocalCluster

from course_fixture import autograde, batch_scores, submit_batch
from mfml_grader.judge import cluster

ASSIGNMENT = "ps4_information_theory"
STUDENTS = ("perfect", "typical_mistakes", "untouched", "ada", "grace", "bomb")


@pytest.fixture(scope="module")
def pool_scores(tmp_path_factory):
    course = submit_batch(tmp_path_factory.mktemp("pool"), [ASSIGNMENT], STUDENTS)
    result = autograde(course, [ASSIGNMENT], "--jobs", "2", "--cluster", "processes")
    assert result.returncode == 0 and "NOT GRADED" not in result.stderr, result.stderr[-3000:]
    return batch_scores(course, [ASSIGNMENT], STUDENTS)


def test_local_dask_cluster_gives_the_pool_scores(pool_scores, tmp_path):
    course = submit_batch(tmp_path / "course", [ASSIGNMENT], STUDENTS)
    result = autograde(course, [ASSIGNMENT], "--jobs", "2", "--cluster", "local")
    assert result.returncode == 0 and "NOT GRADED" not in result.stderr, result.stderr[-3000:]
    assert batch_scores(course, [ASSIGNMENT], STUDENTS) == pool_scores


def _kill_workers_grading(client, targets, stop):
    """Kill (SIGKILL) the worker processing a task of a student in `targets` ({student: kills left})."""
    while not stop.is_set():
        pids = client.run(os.getpid)                                   # {worker address: pid}
        for worker, keys in client.processing().items():
            for key in keys:
                student = next((s for s in targets if f"-{s}-" in str(key)), None)
                if student and targets[student] > 0 and worker in pids:
                    targets[student] -= 1
                    os.kill(pids[worker], signal.SIGKILL)
        time.sleep(0.2)


def test_dead_workers_cost_retries_not_grades(pool_scores, tmp_path):
    course = submit_batch(tmp_path / "course", [ASSIGNMENT], STUDENTS)
    kills = {"ada": 1, "bomb": cluster.ALLOWED_FAILURES + 1}
    with dask.config.set(cluster.DASK_CONFIG), \
            LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, host="127.0.0.1") as local, \
            Client(local) as client:
        stop = threading.Event()
        killer = threading.Thread(target=_kill_workers_grading, args=(client, kills, stop), daemon=True)
        killer.start()
        try:
            result = autograde(course, [ASSIGNMENT], "--jobs", "2", "--cluster", local.scheduler_address)
        finally:
            stop.set()
            killer.join(10)
    assert kills == {"ada": 0, "bomb": 0}, f"the test did not kill the workers it meant to: {kills}"
    scores = batch_scores(course, [ASSIGNMENT], STUDENTS)
    for student in STUDENTS:
        if student != "bomb":
            assert scores[ASSIGNMENT, student] == pool_scores[ASSIGNMENT, student], student
    assert all(score == 0 for score, _ in scores[ASSIGNMENT, "bomb"].values())
    assert f"NOT GRADED bomb/{ASSIGNMENT}: grading this submission stopped its grading worker" in result.stderr, result.stderr[-2000:]


def test_slurm_and_postgresql_give_the_local_sqlite_scores(pool_scores, tmp_path):
    """The batch as Slurm jobs (dask-jobqueue) writing to a PostgreSQL gradebook: the pool's scores."""
    import servers

    with servers.postgres(tmp_path / "postgres") as db_url, servers.slurm(tmp_path / "slurm") as slurm_env:
        course = submit_batch(tmp_path / "course", [ASSIGNMENT], STUDENTS, db_url)
        env = dict(slurm_env, DASK_JOBQUEUE__SLURM__CORES="1", DASK_JOBQUEUE__SLURM__MEMORY="2GiB",
                   DASK_JOBQUEUE__SLURM__WALLTIME="00:20:00", DASK_JOBQUEUE__SLURM__INTERFACE="lo", DASK_JOBQUEUE__SLURM__LOG_DIRECTORY=str(tmp_path / "slurm"))
        result = autograde(course, [ASSIGNMENT], "--jobs", "2", "--cluster", "slurm", env=env)
        assert result.returncode == 0 and "NOT GRADED" not in result.stderr, result.stderr[-3000:]
        assert batch_scores(course, [ASSIGNMENT], STUDENTS) == pool_scores
        worker_logs = list((tmp_path / "slurm").glob("dask-worker-*.err"))
        assert any("Start worker at:      tcp://127.0.0.1:" in log.read_text() for log in worker_logs), "no Slurm job ran a Dask worker on loopback"
