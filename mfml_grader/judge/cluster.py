"""Batch grading on a Dask cluster: `python -m mfml_grader autograde --cluster local|slurm|<address>`.

Each (assignment, student) pair is one Dask task. A worker plugin holds its worker's warm grader
(one grading process set up once, as in the local pool of batch.py) and hands it the pairs of the
tasks the worker runs, one at a time, each for at most the limit per submission. Tasks are
idempotent: grading a pair again overwrites the same autograded notebook and the same gradebook
rows, so Dask may run a task again after its worker died; a dead worker costs a retry, not a grade.
A pair whose task kills `allowed_failures + 1` workers ends as 0 with the reason. The coordinator
(this process) creates the gradebook's students before dispatching and records every outcome.

Clusters: `local` (a `distributed.LocalCluster` on this machine, one single-threaded worker per
job), `slurm` (dask-jobqueue's `SLURMCluster`, adaptive up to `jobs` Slurm jobs of one worker; its
queue, account, cores, memory and walltime come from Dask's jobqueue configuration, e.g.
`~/.config/dask/jobqueue.yaml` or `DASK_JOBQUEUE__SLURM__QUEUE=...`; by default a job asks for the
cores of one grader and 8 GiB) or the address of a running scheduler
(`tcp://host:8786`), whose workers see the course folder at the same path.
"""

import multiprocessing
import threading
import uuid

from distributed import WorkerPlugin, get_worker

from .batch import STARTUP_SECONDS, _Grader

PLUGIN = "mfml-warm-grader"
ALLOWED_FAILURES = 2          # workers a pair may take down with it before it is given up
DASK_CONFIG = {
    "distributed.worker.daemon": False,                    # a worker starts its grading process
    "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
    "distributed.scheduler.work-stealing": False,          # a task is a whole submission: no point moving it
    "distributed.scheduler.worker-saturation": 1.0,        # a worker holds only the task it runs: when it dies,
}                                                          # no neighbour's task counts the death against itself


class WarmGrader(WorkerPlugin):
    """A worker's grading process, started on its first task and kept for the next ones."""

    name = PLUGIN

    def __init__(self, start):
        self.start = start              # (course root, torch threads, progress file, output file)
        self.grader = self.lock = None

    def setup(self, worker):
        self.lock = threading.Lock()

    def teardown(self, worker):
        if self.grader:
            self.grader.kill()

    def _ready(self):
        if self.grader is not None and self.grader.process.is_alive():
            return self.grader
        if self.grader is not None:
            self.grader.kill()
        self.grader = _Grader(multiprocessing.get_context("spawn"), self.start)
        if not self.grader.connection.poll(STARTUP_SECONDS):
            raise RuntimeError(f"the grading process did not start within {STARTUP_SECONDS} s")
        self.grader.limit = float(self.grader.connection.recv())
        return self.grader

    def grade(self, pair):
        """(log text, None) when graded, (None, reason) when stopped at the limit, ("the grading process died", None)."""
        with self.lock:
            grader = self._ready()
            grader.give(pair)
            try:
                if grader.connection.poll(grader.limit):
                    return grader.connection.recv(), None
            except (EOFError, OSError):
                self.grader = None
                grader.kill()
                return "the grading process died", None
            self.grader = None
            grader.kill()
            return None, f"grading took longer than {grader.limit:.0f} s (the limit per submission) and was stopped"


def grade_pair(assignment, student):
    """The Dask task: grade one submission with this worker's warm grader."""
    return get_worker().plugins[PLUGIN].grade((assignment, student))


def _cluster(spec, jobs, root, threads):
    """(a Dask cluster this function started, or None; the address or cluster a Client connects to)."""
    if spec == "local":
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                               scheduler_port=0, host="127.0.0.1")
        return cluster, cluster
    if spec == "slurm":
        import dask
        from dask_jobqueue import SLURMCluster

        configured = dask.config.get("jobqueue.slurm")
        options = {"cores": configured.get("cores") or threads, "memory": configured.get("memory") or "8GiB", "processes": 1,
                   "job_script_prologue": [*(configured.get("job-script-prologue") or []), f"cd {root}",
                                           "export DASK_DISTRIBUTED__WORKER__DAEMON=False"]}
        cluster = SLURMCluster(**options)
        cluster.adapt(minimum=0, maximum=jobs)            # one worker per Slurm job, up to `jobs` jobs
        return cluster, cluster
    return None, spec


def run_on_cluster(spec, pairs, jobs, start, on_done):
    """Grade `pairs` as Dask tasks on the cluster `spec`; `on_done(pair, log text, reason)` as each finishes."""
    import dask
    from dask._task_spec import Task
    from distributed import Client, as_completed
    from distributed.scheduler import KilledWorker

    with dask.config.set(DASK_CONFIG):
        cluster, address = _cluster(spec, jobs, start[0], start[1])
        try:
            with Client(address) as client:
                client.register_plugin(WarmGrader(start))
                batch = uuid.uuid4().hex[:8]
                # Marked as data producers, the tasks wait in the scheduler's queue until a worker is free
                # (worker-saturation), instead of being spread over the workers' own queues at once.
                tasks = {f"grade-{assignment}-{student}-{batch}": (assignment, student) for assignment, student in pairs}
                graph = {key: Task(key, grade_pair, *pair, _data_producer=True) for key, pair in tasks.items()}
                futures = dict(zip(client.get(graph, list(tasks), sync=False), tasks.values()))
                for future in as_completed(list(futures)):
                    try:
                        text, reason = future.result()
                    except KilledWorker:
                        text, reason = None, f"grading this submission stopped its grading worker {ALLOWED_FAILURES + 1} times"
                    except Exception as error:  # noqa: BLE001 - reported; the retry alone takes over
                        text, reason = f"grading failed: {type(error).__name__}: {error}", None
                    on_done(futures.pop(future), text, reason)
                    future.release()            # a result held on a worker that dies would be computed again
        finally:
            if cluster is not None:
                cluster.close()
