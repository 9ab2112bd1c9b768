"""Grade the grader: every catalog case of every assignment through the real grading path.

    python -m mfml_grader validate [assignment ...] [--jobs N]      (make validate-grader [A=...])

In a throwaway copy of the course: generate the release, write one notebook per batch of catalog
entries (mutants, correct variants, forbidden-API uses; one entry per function per notebook, the
other functions keep the reference solution), plus the solution, the untouched stub, and a correct
submission that writes to stderr and warns. Grade them all with the batch autograder, then check:
each mutant loses points on its own cell only and its mistake is named in the feedback (and whether
a visible test already failed for it, the column "caught by visible tests"); each variant gets full
marks and passes every visible test; each forbidden use scores 0 and names the API; solution 100 %,
stub 0 %, noise harmless. Prints one table row per assignment.
"""

import ast
import sys
import tempfile
from dataclasses import dataclass, field

import nbformat
from nbgrader.utils import is_solution

from . import catalog, course, submissions
from .forbidden import assigned_names, free_names
from .submission_code import parse

NOISY_PRELUDE = '''import sys, warnings
warnings.warn("a deprecation warning from student code")
print("debug output on stderr", file=sys.stderr)
'''
KINDS = ("MUTANTS", "VARIANTS", "FORBIDDEN")
COLUMNS = ("caught", "named", "visible", "variants", "forbidden", "reflective")
HEADINGS = ("mutants caught", "mistake named", "caught by visible tests", "variants at 100%", "forbidden refused", "reflection refused")


def plan(root, assignment):
    """{student: (answers, {function: catalog entry}, kind)} for one assignment."""
    source = nbformat.read(course.source_notebook(assignment, root), as_version=4)
    solutions = submissions.answers_from_source(source)
    cases = catalog.load(assignment, root)
    reach = test_cell_dependencies(source)
    apart = {f: {g for g in reach if f in reach[g] or g in reach.get(f, set())} - {f} for f in reach}
    students = {"solution": (solutions, {}, "solution"), "stub": ({}, {}, "stub"),
                "noisy": ({f: NOISY_PRELUDE + code for f, code in solutions.items()}, {}, "noisy")}
    for kind in KINDS:
        for i, batch in enumerate(catalog.batches(getattr(cases, kind, []), apart if kind == "MUTANTS" else None)):
            answers = dict(solutions)
            answers.update({function: entry.code.strip("\n") for function, entry in batch.items()})
            students[f"{kind.lower()}-{i}"] = (answers, batch, kind.lower())
    for i, entry in enumerate(getattr(cases, "REFLECTIVE", [])):  # refuses the whole notebook: one each
        students[f"reflective-{i}"] = ({**solutions, entry.function: entry.code.strip("\n")}, {entry.function: entry}, "reflective")
    return students


def test_cell_dependencies(notebook):
    """{function: the graded functions whose code or results the visible part of its test cell can reach}.

    Follows names through the notebook's cells in order: a name assigned or defined by a statement
    depends on the graded functions behind every global name that statement reads (a solution cell
    adds its own function), twice over so that functions defined later are followed too. In a
    notebook with several mistakes, a failing visible test is then credited to a mistake only when
    it is the one mistake that test can reach.
    """
    graded = {course.grade_id(c) for c in notebook.cells if is_solution(c)}
    reaches, functions, found = {}, set(), {}
    for _ in range(2):
        reaches = {name: behind for name, behind in reaches.items() if name in functions}   # pass 2: variables in order
        for cell in notebook.cells:
            if cell.cell_type != "code":
                continue
            name = course.grade_id(cell) or ""
            tree = parse(course.visible_tests(cell))
            if tree is None:
                continue
            if name.startswith("test_") and name not in graded:
                found[name.removeprefix("test_")] = set().union(*(reaches.get(n, set()) for n in free_names(tree)))
                continue
            own = {name} if name in graded else set()
            for statement in tree.body:
                behind = own.union(*(reaches.get(n, set()) for n in free_names(statement)))
                rebinds = isinstance(statement, ast.Assign) and all(isinstance(t, (ast.Name, ast.Tuple)) for t in statement.targets)
                if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
                    functions.add(statement.name)
                for target in assigned_names(statement):
                    reaches[target] = behind if rebinds else reaches.get(target, set()) | behind
    return found


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
        return f"{self.assignment:<24} " + " ".join(f"{f'{self.counts[k][0]}/{self.counts[k][1]}':>{len(h)}}" for k, h in zip(COLUMNS, HEADINGS))


HEADER = f"{'assignment':<24} " + " ".join(HEADINGS)


def assess(assignment, students, scores, results, dependencies):
    """Check one assignment's graded notebooks against what each case promises.

    `results(student)` gives {function: CellResult}; `dependencies` is `test_cell_dependencies` of the notebook.
    """
    outcome = Outcome(assignment)
    for student, (_, batch, kind) in students.items():
        got, cells = scores(student), results(student)
        text = {f: r.text() for f, r in cells.items()}
        if not got:
            outcome.problems.append(f"{student}: no grades")
            continue
        full = {f for f, (score, maximum) in got.items() if score == maximum}
        failing = {f for f, r in cells.items() if r.visible_error}
        if kind == "solution" and len(full) != len(got):
            outcome.problems.append(f"the reference solution lost points on {sorted(set(got) - full)}")
        if kind == "stub" and any(score for score, _ in got.values()):
            outcome.problems.append(f"the untouched stub earned points: {got}")
        if kind == "noisy" and len(full) != len(got):
            outcome.problems.append(f"stderr noise cost points on {sorted(set(got) - full)}")
        if kind in ("solution", "noisy", "variants") and failing:
            outcome.problems.extend(f"{student}: a visible test of {f} fails on correct code: {cells[f].visible_error}" for f in sorted(failing))
        if kind == "reflective":
            (function, entry), = batch.items()
            refused = all(score == 0 and entry.what in cells[f].report.refusal for f, (score, _) in got.items() if cells.get(f) and cells[f].report)
            outcome.tally("reflective", refused and all(cells.get(f) and cells[f].report for f in got))
            if not refused:
                outcome.problems.append(f"{student}: {function} reaching for {entry.what} did not refuse every exercise naming it: {got}\n"
                                        f"{text.get(function, '')}")
            continue
        for function in set(got) - set(batch) - full:
            if kind not in ("stub",):
                outcome.problems.append(f"{student}: {function} has no mistake but lost points:\n{text.get(function, '')}")
        for function, entry in batch.items():
            report = cells[function].report if function in cells else None
            if kind == "mutants":
                caught = function not in full
                named = report is not None and entry.mistake in report.mistakes
                outcome.tally("caught", caught)
                outcome.tally("named", named)
                outcome.tally("visible", any(dependencies.get(f, set()) & set(batch) == {function} for f in failing))
                if not caught:
                    outcome.problems.append(f"{student}: mutant '{entry.mistake}' of {function} got full marks")
                elif not named:
                    outcome.problems.append(f"{student}: '{entry.mistake}' of {function} not named:\n{text.get(function, '')}")
            elif kind == "variants":
                outcome.tally("variants", function in full)
                if function not in full:
                    outcome.problems.append(f"{student}: correct variant of {function} ({entry.description}) lost points:\n{text.get(function, '')}")
            else:
                refused = got[function][0] == 0 and report is not None and entry.api in report.refusal
                outcome.tally("forbidden", refused)
                if not refused:
                    outcome.problems.append(f"{student}: {function} using {entry.api} scored {got[function]} or was not named:\n{text.get(function, '')}")
    return outcome


def run(source_root, workdir, jobs, assignments=None, out=sys.stderr):
    """Grade every catalog case in a copy of the course at `workdir`; return the Outcomes."""
    from .judge.batch import autograde
    from .release import release

    root = course.copy_course(source_root, workdir)
    assignments = assignments or course.assignments(root)
    plans = {}
    for assignment in assignments:
        if release(root, assignment, out):
            raise RuntimeError(f"nbgrader could not release {assignment} (see above)")
        plans[assignment] = plan(root, assignment)
        for student, (answers, _, _) in plans[assignment].items():
            submissions.submit(root, assignment, student, answers)
    autograde(root, assignments, jobs, out)
    return [assess(a, plans[a], lambda s, a=a: course.test_cell_scores(root, a, s), lambda s, a=a: course.test_cell_results(root, a, s),
                  test_cell_dependencies(nbformat.read(course.source_notebook(a, root), as_version=4))) for a in assignments]


def summary(outcomes):
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
    print(summary(outcomes))
    return 1 if any(o.problems for o in outcomes) else 0
