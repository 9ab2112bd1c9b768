"""Benchmark: submit-to-feedback time of continuous grading (`python -m mfml_grader serve`).

    python bench/bench_feedback.py [--students 6] [--rounds 3] [--jobs N] [--assignment ps1_linear_algebra]

In a throwaway copy of the course, releases the assignment to the course's own exchange and starts
the service (no submission limit), waits until its grading processes are warm, then sends bursts:
in each round every student runs `nbgrader submit` at the same moment (half of them with the demo
student's typical mistakes, half with the solution). A submission's latency is the time from its
`nbgrader submit` returning (the student has submitted) to its feedback page in the exchange (what
the Assignments tab's "Fetch Feedback" then copies). Prints the median, the 95th percentile and the
maximum, and how much of it was grading (logs/serve-spans.tsv). Fails (exit 1) when a submission
gets no feedback or its score is not the expected one.
"""

import argparse
import concurrent.futures
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_autograde import fresh_course  # noqa: E402

from mfml_grader import submissions  # noqa: E402
from mfml_grader.cli import demo_answers  # noqa: E402
from mfml_grader.judge.batch import nbgrader_env  # noqa: E402

COURSE = "math-foundations-ml"
MEDIAN_TARGET = 3.0    # seconds, a light assignment on this machine


def nbgrader(home, *args, exchange):
    result = subprocess.run(["nbgrader", *args, f"--course={COURSE}", f"--Exchange.root={exchange}"], cwd=home,
                            env=nbgrader_env(HOME=str(home)), capture_output=True, text=True, timeout=300)
    if result.returncode:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{result.stderr[-2000:]}")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--assignment", default="ps1_linear_algebra")
    args = parser.parse_args()
    a = args.assignment
    from nbgrader.utils import notebook_hash

    with tempfile.TemporaryDirectory(prefix="mfml-bench-feedback-") as workdir:
        root = fresh_course(workdir, "course")
        exchange = root / "exchange"
        exchange.mkdir(mode=0o777)
        with open(root / "nbgrader_config.py", "a") as config:
            config.write("\nc.GradingService.max_graded = 0\nc.GradingService.poll_seconds = 0.05\n")
        for command in (["generate_assignment", a, "--force"], ["release_assignment", a, "--force"]):
            subprocess.run(["nbgrader", *command], cwd=root, env=nbgrader_env(), check=True, capture_output=True)
        release = nbformat.read(root / "release" / a / f"{a}.ipynb", as_version=4)
        solution = submissions.answers_from_source(nbformat.read(root / "source" / a / f"{a}.ipynb", as_version=4))
        students = [f"student{i}" for i in range(args.students)]
        for i, student in enumerate(students):
            home = Path(workdir) / student
            home.mkdir()
            nbgrader(home, "fetch_assignment", a, exchange=exchange)
            answers = demo_answers("typical_mistakes", a, root) if i % 2 else solution
            nbformat.write(submissions.fill(release, answers), home / a / f"{a}.ipynb")

        log = open(Path(workdir) / "serve.log", "w")
        service = subprocess.Popen([sys.executable, "-m", "mfml_grader", "serve", "--jobs", str(args.jobs)], cwd=root,
                                   env=nbgrader_env(), stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while "ready:" not in (Path(workdir) / "serve.log").read_text():
                if service.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the service did not start:\n" + (Path(workdir) / "serve.log").read_text()[-3000:])
                time.sleep(0.2)
            inbound, outbound = exchange / COURSE / "inbound", exchange / COURSE / "feedback"
            latencies, missing = [], []
            for round_ in range(args.rounds):
                submitted = {}

                def submit(student):
                    before = set(inbound.glob(f"{student}+*"))
                    nbgrader(Path(workdir) / student, "submit", a, f"--student={student}", exchange=exchange)
                    returned = time.time()
                    (folder,) = set(inbound.glob(f"{student}+*")) - before
                    secret = (folder / "submission_secret.txt").read_text()
                    submitted[student] = (returned, outbound / f"{notebook_hash(secret=secret, notebook_id=a)}.html")

                barrier = threading.Barrier(len(students))
                with concurrent.futures.ThreadPoolExecutor(len(students)) as pool:
                    list(pool.map(lambda s: (barrier.wait(), submit(s)), students))
                deadline = time.monotonic() + 300
                waiting = dict(submitted)
                while waiting and time.monotonic() < deadline:
                    for student, (returned, page) in list(waiting.items()):
                        if page.exists():
                            latencies.append(max(0.0, page.stat().st_mtime - returned))
                            del waiting[student]
                    time.sleep(0.01)
                missing += [f"{s} (round {round_ + 1})" for s in waiting]
        finally:
            service.terminate()
            service.wait(timeout=60)
            log.close()
        spans = [float(line.split("\t")[2]) for line in (root / "logs" / "serve-spans.tsv").read_text().splitlines()]
        scores = {}   # {student: {"score/max", ...}} from the service's log
        for student, score in re.findall(r" graded (\S+)/\S+ \(attempt \d+\): (\S+/\S+)", (Path(workdir) / "serve.log").read_text()):
            scores.setdefault(student, set()).add(score)

    n = len(latencies)
    graded = sum(len(s) for s in scores.values())
    print(f"{args.students} students x {args.rounds} bursts of {a} on {args.jobs} grading process(es): {n} submissions")
    wrong = [f"{student}: {sorted(got)}" for i, student in enumerate(students) if len(got := scores.get(student, set())) != 1
             or (i % 2 == 0 and len({*next(iter(got)).split("/")}) != 1)]
    if wrong:
        print(f"SCORES NOT AS EXPECTED (the solution in full, each student the same every round; {graded} distinct): " + "; ".join(wrong))
    if n:
        median, p95 = statistics.median(latencies), percentile(latencies, 0.95)
        print(f"submit -> feedback released: median {median:.2f} s, 95th percentile {p95:.2f} s, max {max(latencies):.2f} s "
              f"(target: median under {MEDIAN_TARGET:.0f} s)")
        print(f"of which grading and feedback in a warm grading process: median {statistics.median(spans):.2f} s per submission")
    if missing:
        print("NO FEEDBACK: " + ", ".join(missing))
    return 1 if missing or wrong or not n else 0


if __name__ == "__main__":
    sys.exit(main())
