"""Grade the grader: every catalog case of every assignment through the real grading path.

    python -m mfml_grader validate [--jobs N]      (make validate-grader)

In a throwaway copy of the course: generate the release, write one notebook per batch of catalog
entries (mutants, correct variants, forbidden-API uses; one entry per function per notebook, the
other functions keep the reference solution), plus the solution, the untouched stub, and a correct
submission that writes to stderr and warns. Grade them all with the batch autograder, then check:
each mutant loses points on its own cell only and its mistake is named in the feedback; each
variant gets full marks; each forbidden use scores 0 and names the API; solution 100 %, stub 0 %,
noise harmless. Prints one table row per assignment.
"""

import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import catalog, course, submissions

NOISY_PRELUDE = '''import sys, warnings
warnings.warn("a deprecation warning from student code")
print("debug output on stderr", file=sys.stderr)
'''
KINDS = ("MUTANTS", "VARIANTS", "FORBIDDEN")
COLUMNS = ("caught", "named", "variants", "forbidden", "reflective")


def plan(root, assignment):
    """{student: (answers, {function: catalog entry}, kind)} for one assignment."""
    solutions = submissions.answers_from_source(nbformat.read(course.source_notebook(assignment, root), as_version=4))
    cases = catalog.load(assignment, root)
    students = {"solution": (solutions, {}, "solution"), "stub": ({}, {}, "stub"),
                "noisy": ({f: NOISY_PRELUDE + code for f, code in solutions.items()}, {}, "noisy")}
    for kind in KINDS:
        for i, batch in enumerate(catalog.batches(getattr(cases, kind, []))):
            answers = dict(solutions)
            answers.update({function: entry.code.strip("\n") for function, entry in batch.items()})
            students[f"{kind.lower()}-{i}"] = (answers, batch, kind.lower())
    for i, entry in enumerate(getattr(cases, "REFLECTIVE", [])):  # refuses the whole notebook: one each
        students[f"reflective-{i}"] = ({**solutions, entry.function: entry.code.strip("\n")}, {entry.function: entry}, "reflective")
    return students


@dataclass
class Outcome:
    """What grading showed for one assignment; `problems` lists every broken promise."""

    assignment: str
    counts: dict = field(default_factory=lambda: {k: [0, 0] for k in COLUMNS})
    problems: list = field(default_factory=list)

    def tally(self, key, ok):
        self.counts[key][0] += bool(ok)
        self.counts[key][1] += 1

    def row(self):
        cells = [f"{self.counts[k][0]}/{self.counts[k][1]}" for k in COLUMNS]
        return f"{self.assignment:<24} {cells[0]:>15} {cells[1]:>15} {cells[2]:>18} {cells[3]:>18} {cells[4]:>19}"


HEADER = (f"{'assignment':<24} {'mutants caught':>15} {'mistake named':>15} {'variants at 100%':>18} {'forbidden refused':>18} "
          f"{'reflection refused':>19}")


def judge(assignment, students, scores, feedback):
    """Check one assignment's graded notebooks against what each case promises."""
    outcome = Outcome(assignment)
    for student, (_, batch, kind) in students.items():
        got, text = scores(student), feedback(student)
        if not got:
            outcome.problems.append(f"{student}: no grades")
            continue
        full = {f for f, (score, maximum) in got.items() if score == maximum}
        if kind == "solution" and len(full) != len(got):
            outcome.problems.append(f"the reference solution lost points on {sorted(set(got) - full)}")
        if kind == "stub" and any(score for score, _ in got.values()):
            outcome.problems.append(f"the untouched stub earned points: {got}")
        if kind == "noisy" and len(full) != len(got):
            outcome.problems.append(f"stderr noise cost points on {sorted(set(got) - full)}")
        if kind == "reflective":
            (function, entry), = batch.items()
            refused = all(score == 0 and entry.what in text.get(f, "") for f, (score, _) in got.items())
            outcome.tally("reflective", refused)
            if not refused:
                outcome.problems.append(f"{student}: {function} reaching for {entry.what} did not refuse every exercise naming it: {got}\n"
                                        f"{text.get(function, '')}")
            continue
        for function in set(got) - set(batch) - full:
            if kind not in ("stub",):
                outcome.problems.append(f"{student}: {function} has no mistake but lost points:\n{text.get(function, '')}")
        for function, entry in batch.items():
            if kind == "mutants":
                caught = function not in full
                named = f"Likely mistake: {entry.mistake}." in text.get(function, "")
                outcome.tally("caught", caught)
                outcome.tally("named", named)
                if not caught:
                    outcome.problems.append(f"{student}: mutant '{entry.mistake}' of {function} got full marks")
                elif not named:
                    outcome.problems.append(f"{student}: '{entry.mistake}' of {function} not named:\n{text.get(function, '')}")
            elif kind == "variants":
                outcome.tally("variants", function in full)
                if function not in full:
                    outcome.problems.append(f"{student}: correct variant of {function} ({entry.description}) lost points:\n{text.get(function, '')}")
            else:
                refused = got[function][0] == 0 and entry.api in text.get(function, "")
                outcome.tally("forbidden", refused)
                if not refused:
                    outcome.problems.append(f"{student}: {function} using {entry.api} scored {got[function]} or was not named:\n{text.get(function, '')}")
    return outcome


def copy_course(source_root, destination):
    destination = Path(destination)
    for name in ("source", "grader_tests", "demo", "nbgrader_config.py"):
        src = Path(source_root) / name
        if src.is_dir():
            shutil.copytree(src, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy(src, destination / name)
    return destination


def run(source_root, workdir, jobs, assignments=None, out=sys.stderr):
    """Grade every catalog case in a copy of the course at `workdir`; return the Outcomes."""
    import subprocess

    from .judge.batch import autograde, nbgrader_env

    root = copy_course(source_root, workdir)
    assignments = assignments or course.assignments(root)
    plans = {}
    for assignment in assignments:
        subprocess.run(["nbgrader", "generate_assignment", assignment, "--log-level=ERROR"], cwd=root, env=nbgrader_env(), check=True)
        plans[assignment] = plan(root, assignment)
        release = nbformat.read(course.release_notebook(assignment, root), as_version=4)
        for student, (answers, _, _) in plans[assignment].items():
            folder = root / "submitted" / student / assignment
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(submissions.fill(release, answers), folder / f"{assignment}.ipynb")
    autograde(root, assignments, jobs, out)
    return [judge(a, plans[a], lambda s, a=a: course.test_cell_scores(root, a, s), lambda s, a=a: course.test_cell_outputs(root, a, s)) for a in assignments]


def report(outcomes):
    lines = [HEADER, *(o.row() for o in outcomes)]
    for outcome in outcomes:
        lines += [f"PROBLEM {outcome.assignment}: {p}" for p in outcome.problems]
    return "\n".join(lines)


def main(source_root, jobs, assignments=()):
    unknown = set(assignments) - set(course.assignments(source_root))
    if unknown:
        print(f"no such assignment: {', '.join(sorted(unknown))} (the course has {', '.join(course.assignments(source_root))})", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as workdir:
        outcomes = run(source_root, workdir, jobs, list(assignments) or None)
    print(report(outcomes))
    return 1 if any(o.problems for o in outcomes) else 0
