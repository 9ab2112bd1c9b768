"""Benchmark: stock nbgrader (a kernel per notebook, one after another) vs this course's grader.

    python bench/bench_autograde.py [--per-assignment 6] [--jobs N] [--figures-only]

Builds one set of submissions in a throwaway copy of the course: for every assignment the
reference solution, the untouched stub, the demo student with typical mistakes, catalog mutants
and variants (all honest), plus broken ones (a crash, an exception at import, `os._exit`). Grades
the same set twice, with `MFML_EXECUTOR=kernel nbgrader autograde` and with
`python -m mfml_grader autograde --jobs N`, and prints seconds per notebook, the ratio, whether
the two agree on every honest submission's score, and per assignment where the time goes (from
logs/autograde-times.tsv: the time spent running each notebook's cells and checks, and what grading it
cost beyond that, against OVERHEAD_SECONDS). Then the same submissions as Dask tasks on a
LocalCluster of 1 and of 2 workers: throughput and scaling efficiency.

Then the figures: each figure cell of every notebook (mfml_grader/figures.py), run in the judge's
sandbox on one thread as the grader runs it, drawing and PNG included, the best of a few runs, against
the target of FIGURE_SECONDS per cell. Fails (exit 1) when scores disagree or a figure cell is slower.
"""

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mfml_grader import catalog, course, figures, submissions  # noqa: E402
from mfml_grader.cli import demo_answers  # noqa: E402
from mfml_grader.judge.batch import read_overheads, read_times  # noqa: E402

FIGURE_SECONDS = 0.5   # a figure cell, drawn and sent as PNG: well under a second on one thread
OVERHEAD_SECONDS = 0.1  # per notebook, beyond running it: nbgrader's steps and the gradebook
BROKEN = {
    "crash": "import ctypes\nctypes.string_at(0)",
    "raises_at_import": "raise RuntimeError('half-finished code')",
    "exits": "import os\nos._exit(1)",
}


def build(root, assignments, per_assignment):
    """Write the submissions; return {(student, assignment): honest?}."""
    made = {}
    for assignment in assignments:
        solutions = demo_answers("perfect", assignment, root)
        honest = {"perfect": solutions, "untouched": {}}
        mistakes = demo_answers("typical_mistakes", assignment, root)
        if mistakes:
            honest["typical_mistakes"] = mistakes
        cases = catalog.load(assignment, root)
        entries = list(cases.MUTANTS) + list(cases.VARIANTS)
        for i, batch in enumerate(catalog.batches(entries)[: max(0, per_assignment - len(honest))]):
            honest[f"catalog{i}"] = {**solutions, **{f: e.code.strip() for f, e in batch.items()}}
        first = next(iter(solutions))
        broken = {name: {**solutions, first: solutions[first] + "\n\n" + code} for name, code in BROKEN.items()}
        for group, is_honest in ((honest, True), (broken, False)):
            for student, answers in group.items():
                submissions.submit(root, assignment, student, answers)   # the notebook and the assignment's data
                made[(student, assignment)] = is_honest
    return made


def scores(root):
    from nbgrader.api import MissingEntry

    from mfml_grader.gradebook import open_gradebook

    found = {}
    with open_gradebook(root) as gradebook:
        for assignment in gradebook.assignments:
            for student in gradebook.students:
                try:
                    found[(student.id, assignment.name)] = round(gradebook.find_submission(assignment.name, student.id).score, 4)
                except MissingEntry:
                    pass
    return found


def fresh_course(workdir, name):
    root = Path(workdir) / name
    root.mkdir()
    for item in ("source", "release", "grader_tests", "demo", "nbgrader_config.py"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / item)
    return root


def run(command, root, env):
    started = time.monotonic()
    subprocess.run(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.monotonic() - started


def print_breakdown(assignments, made, stock, running, jobs):
    """Where the time goes: per assignment, stock's seconds per notebook and this grader's time
    running notebooks (cells and hidden checks, which any executor must run) per notebook."""
    counts = {a: sum(1 for _, assignment in made if assignment == a) for a in assignments}
    print(f"{'assignment':<24} {'stock s/nb':>10} {'running s/nb':>13}")
    for a in assignments:
        print(f"{a:<24} {stock[a] / counts[a]:>10.2f} {running[a] / counts[a]:>13.2f}")
    total = sum(running.values())
    print(f"running the notebooks took {total:.1f} s of this grader's time: even with no other overhead, "
          f"{jobs} jobs need {total / jobs:.1f} s, at most {sum(stock.values()) * jobs / total:.1f}x")


def time_figures(assignments, repeats):
    """{assignment: {grade_id: seconds}}: each figure cell of the source notebook (a correct submission)
    run in the judge's sandbox, on one thread, after the cells before it; the best of `repeats` runs."""
    from mfml_grader.judge.session import Judge

    judge = Judge()
    times = {}
    try:
        for assignment in assignments:
            folder = REPO / "source" / assignment
            files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.suffix != ".ipynb"}
            cells = [c for c in nbformat.read(course.source_notebook(assignment, REPO), as_version=4).cells
                     if c.cell_type == "code" and not course.is_test_cell(c)]
            best = {course.grade_id(c): math.inf for c in cells if figures.is_figure_cell(c)}
            for _ in range(repeats):
                session = judge.session(files)
                try:
                    for cell in cells:
                        started = time.monotonic()
                        session.run_cell(cell.source)
                        if figures.is_figure_cell(cell):
                            best[course.grade_id(cell)] = min(best[course.grade_id(cell)], time.monotonic() - started)
                finally:
                    session.release()
            times[assignment] = best
    finally:
        judge.close()
    return times


def print_figures(times, repeats):
    """Each figure cell's time, per notebook; returns how many are over FIGURE_SECONDS."""
    print(f"figure cells in the judge's sandbox (one thread, drawing and PNG included, best of {repeats} runs; "
          f"target {FIGURE_SECONDS:.2f} s each)")
    slow = 0
    for assignment, cells in times.items():
        print(f"{assignment:<24} {len(cells)} figure cells, {sum(cells.values()):.2f} s")
        for grade_id, seconds in cells.items():
            over = seconds > FIGURE_SECONDS
            slow += over
            print(f"  {grade_id:<40} {seconds:>6.3f} s{'  OVER THE TARGET' if over else ''}")
    print(f"{sum(map(len, times.values()))} figure cells, {slow} over the target")
    return slow


def compare(args, assignments):
    """Grade the same submissions with stock nbgrader and with this grader; returns the honest ones whose scores disagree."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    with tempfile.TemporaryDirectory() as workdir:
        results = {}
        for name in ("stock", "sandboxed"):
            root = fresh_course(workdir, name)
            for assignment in assignments:
                subprocess.run(["nbgrader", "generate_assignment", assignment, "--force", "--log-level=ERROR"], cwd=root, env=env, check=True)
                # the gradebook has the assignment; release/ as `make release` left it (figures drawn once, as in a course)
                shutil.copytree(REPO / "release" / assignment, root / "release" / assignment, dirs_exist_ok=True)
            made = build(root, assignments, args.per_assignment)
            if name == "stock":
                stock = {a: run(["nbgrader", "autograde", a, "--force", "--log-level=ERROR"], root, dict(env, MFML_EXECUTOR="kernel"))
                         for a in assignments}
                seconds = sum(stock.values())
            else:
                seconds = run([sys.executable, "-m", "mfml_grader", "autograde", "--jobs", str(args.jobs), *assignments], root, env)
                running = dict.fromkeys(assignments, 0.0)
                for assignment, _, t in read_times(root):
                    running[assignment] += t
                overheads = [t for _, _, t in read_overheads(root)]
            results[name] = (seconds, scores(root))
            print(f"{name:>10}: {len(made)} notebooks in {seconds:.1f} s = {seconds / len(made):.2f} s per notebook", flush=True)
        honest = [key for key, is_honest in made.items() if is_honest]
        disagree = [key for key in honest if results["stock"][1].get(key) != results["sandboxed"][1].get(key)]
        ratio = results["stock"][0] / results["sandboxed"][0]
        print(f"speed-up: {ratio:.1f}x with --jobs {args.jobs} on {os.cpu_count()} cores")
        print_breakdown(assignments, made, stock, running, args.jobs)
        overhead = sum(overheads) / max(1, len(overheads))
        print(f"beyond running the notebook, grading one took {overhead:.3f} s on average (nbgrader's steps, the gradebook; "
              f"{len(overheads)} notebooks; target {OVERHEAD_SECONDS} s){'  OVER THE TARGET' if overhead > OVERHEAD_SECONDS else ''}")
        print(f"honest submissions: {len(honest)}, scores agree on {len(honest) - len(disagree)}")
        for key in disagree:
            print(f"  DISAGREE {key}: stock {results['stock'][1].get(key)} vs sandboxed {results['sandboxed'][1].get(key)}")
        return disagree + time_dask(Path(workdir) / "sandboxed", assignments, env, len(made), results["sandboxed"][1], honest)


def time_dask(root, assignments, env, notebooks, want, honest):
    """Grade the same submissions again as Dask tasks on a LocalCluster of 1, then 2 workers: throughput,
    the scaling efficiency (speed-up over one worker, per worker) and whether the scores are the same."""
    throughput, disagree = {}, []
    for workers in (1, 2):
        seconds = run([sys.executable, "-m", "mfml_grader", "autograde", "--jobs", str(workers), "--cluster", "local", *assignments], root, env)
        throughput[workers] = notebooks / seconds
        got = scores(root)
        disagree += [key for key in honest if got.get(key) != want.get(key)]
        print(f"dask, {workers} worker{'s' * (workers > 1)}: {notebooks} notebooks in {seconds:.1f} s = {throughput[workers]:.2f} notebooks/s", flush=True)
    print(f"scaling efficiency, 2 workers: {throughput[2] / (2 * throughput[1]):.0%} on {os.cpu_count()} cores "
          f"(scores {'the same' if not disagree else 'DIFFER'})")
    return disagree


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-assignment", type=int, default=6, help="honest submissions per assignment")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--assignments", nargs="*", help="default: every assignment in source/")
    parser.add_argument("--figures-only", action="store_true", help="time the figure cells only (no grading)")
    parser.add_argument("--figure-runs", type=int, default=3, help="runs of each notebook; each figure cell's best time counts")
    args = parser.parse_args()
    assignments = args.assignments or course.assignments(REPO)
    disagree = [] if args.figures_only else compare(args, assignments)
    slow = print_figures(time_figures(assignments, args.figure_runs), args.figure_runs)
    return 1 if disagree or slow else 0


if __name__ == "__main__":
    sys.exit(main())
