"""Course commands that nbgrader does not have: demo submissions and a per-exercise score table.

    python -m mfml_grader release [A ...]    # nbgrader generate_assignment, keeping release/ when it refuses
    python -m mfml_grader demo-submissions   # submitted/<student>/<assignment>/ for the demo students
    python -m mfml_grader autograde --jobs N # grade all of submitted/ as Dask tasks on N cores, with a progress bar
        [--cluster local|slurm|tcp://host:port|processes] # ... elsewhere (Slurm: up to N jobs), or without Dask
    python -m mfml_grader table              # per-student, per-exercise scores from the gradebook
    python -m mfml_grader validate [A ...]   # grade the grader: every mutant caught and named, ... (real grading path)
    python -m mfml_grader check A [f ...]    # the same promises in this process, in seconds (the author's loop)
    python -m mfml_grader report             # reports/index.html: item analysis with plots
    python -m mfml_grader export-lms         # exports/gradescope/**/results.json and exports/canvas.csv
    python -m mfml_grader serve [--once]     # continuous grading: feedback seconds after each submission (mfml_grader/serve.py)
    python -m mfml_grader pretrain           # remake ps8's data and pretrained encoder (about 7 minutes; both shipped)
    python -m mfml_grader hub [--port N] [--prefix P]  # a local course hub as root: users, exchange, formgrader (mfml_grader/hub.py)
    python -m mfml_grader hub-clean          # remove the hub's users, homes and state
"""

import argparse
import os
import sys
from pathlib import Path

import nbformat

from . import course, submissions
from .gradebook import graded_submissions, test_cell_grades

DEMO_STUDENTS = ("perfect", "typical_mistakes", "untouched")


def demo_answers(student, assignment, root):
    """The answers a demo student gives: the instructor's solutions, shipped mistakes, or nothing."""
    if student == "perfect":
        return submissions.answers_from_source(nbformat.read(course.source_notebook(assignment, root), as_version=4))
    if student == "typical_mistakes":
        path = root / "demo" / student / f"{assignment}.py"
        if not path.exists():
            return None
        release = nbformat.read(course.release_notebook(assignment, root), as_version=4)
        return submissions.answers_from_python(path.read_text(), set(course.cells_by_grade_id(release)))
    return {}


def write_demo_submissions(root):
    """Write every demo student's submission of every released assignment into submitted/."""
    for assignment in course.assignments(root):
        for student in DEMO_STUDENTS:
            answers = demo_answers(student, assignment, root)
            if answers is not None:
                path = submissions.submit(root, assignment, student, answers)
                print(f"wrote {path.relative_to(root)}")


def score_table(root):
    """Rows of (assignment, student, {test cell: (score, max)}, total, max) from the gradebook."""
    rows = []
    for assignment, student, submission in graded_submissions(root):
        cells = {function: (grade.score, grade.max_score) for function, grade in test_cell_grades(submission).items()}
        rows.append((assignment, student, cells, submission.score, submission.max_score))
    return rows


def print_table(root, out=sys.stdout):
    rows = score_table(root)
    if not rows:
        print("no graded submissions in the gradebook: run `make autograde` first", file=out)
        return
    for assignment in dict.fromkeys(r[0] for r in rows):
        block = [r for r in rows if r[0] == assignment]
        exercises = list(block[0][2])
        width = max(len(e) for e in exercises + ["exercise"])
        students = [r[1] for r in block]
        colw = max(12, *(len(s) for s in students))
        print(f"\n{assignment}", file=out)
        print(f"  {'exercise':<{width}}  " + "  ".join(f"{s:>{colw}}" for s in students), file=out)
        for exercise in exercises:
            cells = [r[2].get(exercise) for r in block]
            print(f"  {exercise:<{width}}  " + "  ".join(f"{c[0]:>{colw - 5}.2f}/{c[1]:<4g}" if c else f"{'-':>{colw}}" for c in cells), file=out)
        print(f"  {'total':<{width}}  " + "  ".join(f"{r[3] / r[4]:>{colw - 1}.0%} " if r[4] else f"{'-':>{colw}}" for r in block), file=out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["hub"], ["hub-clean"]):   # the course hub has options of its own
        from .hub import main as hub

        sys.exit(hub(argv))
    parser = argparse.ArgumentParser(prog="python -m mfml_grader", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["release", "demo-submissions", "autograde", "table", "validate", "check", "report", "export-lms", "pretrain", "cells", "serve"])
    parser.add_argument("assignments", nargs="*", help="assignments to grade or validate (default: all); for check: one assignment, then functions")
    parser.add_argument("--jobs", type=int, default=None, help="parallel graders (default: all cores; serve: GradingService.jobs)")
    parser.add_argument("--cluster", default="local", help="where autograde's Dask tasks run: local (a LocalCluster of --jobs "
                        "workers, the default), slurm, or a scheduler's address; `processes`: grading processes of this machine, without Dask")
    parser.add_argument("--once", action="store_true", help="serve: grade what is in the exchange, then stop")
    parser.add_argument("--course", type=Path, default=None, help="course directory (default: found from the current folder)")
    args = parser.parse_intermixed_args(argv)
    root = (args.course or course.course_root()).resolve()
    jobs = max(1, args.jobs or os.cpu_count() or 1)
    if args.command == "release":
        from .release import main as release

        sys.exit(release(root, args.assignments))
    elif args.command == "demo-submissions":
        write_demo_submissions(root)
    elif args.command == "autograde":
        from .judge.batch import autograde

        cluster = None if args.cluster == "processes" else args.cluster
        autograde(root, args.assignments or course.assignments(root), jobs, cluster=cluster)
    elif args.command == "report":
        from .item_analysis import write

        print(f"wrote {write(root)}")
    elif args.command == "export-lms":
        from .exports import canvas, gradescope

        print(f"wrote {gradescope(root, root / 'exports' / 'gradescope')} Gradescope results.json files in exports/gradescope/")
        print(f"wrote exports/canvas.csv ({canvas(root, root / 'exports' / 'canvas.csv')} students)")
    elif args.command == "validate":
        from .validate import main as validate

        sys.exit(validate(root, jobs, args.assignments))
    elif args.command == "cells":
        from .judge.independent import explain

        for assignment in args.assignments or course.assignments(root):
            print(assignment)
            for gid, why in explain(assignment, root):
                print(f"  {gid:<36} {'left out' if not why else 'runs: ' + why}")
    elif args.command == "serve":
        from .serve import main as serve

        serve(root, once=args.once, jobs=args.jobs)
    elif args.command == "pretrain":
        from .pretrain import main as pretrain

        pretrain(root)
    elif args.command == "check":
        from .check import main as check

        if not args.assignments:
            parser.error("check needs an assignment, e.g. `check ps1_linear_algebra l2_norm`")
        sys.exit(check(args.assignments[0], args.assignments[1:], root))
    else:
        print_table(root)


if __name__ == "__main__":
    main()
