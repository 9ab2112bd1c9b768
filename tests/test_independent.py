"""Grading leaves out the instructor's cells no grade depends on: which cells, why the others run, and the same scores."""

import nbformat
import pytest
from course_fixture import autograde, batch_scores, submit_batch

from mfml_grader import catalog, course
from mfml_grader.judge.independent import cells_to_skip, for_submission, names_of, why_it_runs


def cell(source, grade_id, locked=True, solution=False, grade=False):
    """A code cell with nbgrader's metadata: locked instructor cells by default."""
    new = nbformat.v4.new_code_cell(source)
    new.metadata["nbgrader"] = {"grade_id": grade_id, "locked": locked, "solution": solution, "grade": grade, "schema_version": 3}
    if grade:
        new.metadata["nbgrader"]["points"] = 1
    return new


def skipped(*cells, checked=("f",)):
    return cells_to_skip(list(cells), {c.metadata["nbgrader"]["grade_id"]: c.source for c in cells}, checked)


SETUP = cell("import torch", "setup")
SOLUTION = cell("def f(x):\n    return x * 2", "f", locked=False, solution=True)
TEST = cell("assert f(torch.ones(2)).sum() == 4", "test_f", locked=False, grade=True)
EXPERIMENT = cell("xs = torch.arange(3.0)\nys = f(xs)\nprint(ys)", "experiment")
FIGURE = cell("import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot(xs, ys)\nplt.show()", "figure_f")


def test_experiments_and_their_figures_are_left_out_and_what_tests_read_runs():
    assert skipped(SETUP, SOLUTION, EXPERIMENT, FIGURE, TEST) == {"experiment", "figure_f"}


def test_a_cell_whose_names_a_running_cell_reads_runs():
    uses = cell("print(ys.sum())", "uses", locked=False, solution=True)
    assert skipped(SETUP, SOLUTION, EXPERIMENT, FIGURE, uses, TEST) == set()    # the figure could change ys, which `uses` reads
    assert skipped(SETUP, SOLUTION, EXPERIMENT, uses, FIGURE, TEST) == {"figure_f"}
    reads_in_function = cell("def g():\n    return xs", "g", locked=False, solution=True)   # read when called, whenever that is
    assert skipped(SETUP, reads_in_function, SOLUTION, EXPERIMENT, TEST) == set()


def test_names_the_checks_look_up_run():
    helper = cell("def f(x):\n    return x", "helper")
    assert "helper" not in skipped(SETUP, helper, TEST)
    named = [("setup", False, names_of(SETUP.source)), ("helper", False, names_of(helper.source))]
    assert why_it_runs(1, named, {"helper"}, {"f"}) == "the hidden checks look up f"


def test_a_cell_that_could_change_data_a_running_cell_reads_runs():
    data = cell("data = torch.ones(3)", "data")
    changes = cell("f(data)", "changes")                         # f may change data in place
    test = cell("assert f(data).sum() == 6", "test_f", locked=False, grade=True)
    assert skipped(SETUP, data, SOLUTION, changes, test) == set()
    assert skipped(SETUP, data, SOLUTION, changes, TEST) == {"data", "changes"}   # nothing reads data afterwards
    constant = cell("N = 3", "constant")
    reads_constant = cell("print(f(torch.ones(N)))", "reads_constant")
    test_n = cell("assert f(torch.ones(N)).sum() == 6", "test_f", locked=False, grade=True)
    assert skipped(SETUP, constant, SOLUTION, reads_constant, test_n) == {"reads_constant"}


def test_functions_with_memory_keep_the_cells_that_call_them():
    counter = cell("calls = []\ndef f(x):\n    calls.append(x)\n    return x * 2", "f", locked=False, solution=True)
    assert skipped(SETUP, counter, EXPERIMENT, TEST) == set()
    default = cell("def f(x, seen=[]):\n    seen.append(x)\n    return x * 2", "f", locked=False, solution=True)
    assert skipped(SETUP, default, EXPERIMENT, TEST) == set()
    glob = cell("n = 0\ndef f(x):\n    global n\n    n += 1\n    return x * 2", "f", locked=False, solution=True)
    assert skipped(SETUP, glob, EXPERIMENT, TEST) == set()


@pytest.mark.parametrize("student_code", [
    "def f(x):\n    return globals()['xs'] * 0 + x * 2",
    "def f(x):\n    return eval('x * 2')",
    "%time y = 1\ndef f(x):\n    return x * 2",
    "def f(x) return x",                                          # does not parse
    "import sys\ndef f(x):\n    return sys.modules['__main__'].xs",
    "def f(x):\n    return x * 2\ny = " + "1+" * 100_000 + "1",      # too deep to analyse: the analysis is not the student's to crash
])
def test_a_submission_that_reaches_names_another_way_runs_every_cell(student_code):
    solution = cell(student_code, "f", locked=False, solution=True)
    assert skipped(SETUP, solution, EXPERIMENT, FIGURE, TEST) == set()


def test_only_the_instructors_cells_as_released_are_left_out():
    unlocked = cell(EXPERIMENT.source, "experiment", locked=False)
    assert skipped(SETUP, SOLUTION, unlocked, TEST) == set()
    changed = cell(EXPERIMENT.source, "experiment")
    assert cells_to_skip([SETUP, SOLUTION, changed, TEST], {"setup": SETUP.source, "experiment": "print(1)"}, {"f"}) == set()
    module = cell("torch.pi_ish = 3", "module")
    assert skipped(SETUP, SOLUTION, module, TEST) == set()


def test_a_test_cell_sees_only_what_it_reads_before_binding_it():
    test = cell("xs = torch.ones(2)\nys = [f(x) for x in xs]\nassert len(ys) == 2", "test_f", locked=False, grade=True)
    assert skipped(SETUP, SOLUTION, EXPERIMENT, test) == {"experiment"}
    reads = cell("assert ys.shape == (3,)", "test_f", locked=False, grade=True)
    assert skipped(SETUP, SOLUTION, EXPERIMENT, reads) == set()


def test_every_assignment_leaves_out_most_of_its_experiments_and_figures():
    figures, figures_left_out = 0, 0
    for assignment in course.assignments():
        nb = nbformat.read(course.source_notebook(assignment), as_version=4)
        locked = [course.grade_id(c) for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("locked")
                  and not course.is_test_cell(c)]
        left_out = for_submission(nb, assignment, course.course_root())
        assert len(left_out) >= len(locked) // 2, f"{assignment}: only {sorted(left_out)} of {locked}"
        figures += sum(g.startswith("figure_") for g in locked)
        figures_left_out += sum(g.startswith("figure_") for g in left_out)
    assert figures_left_out >= 0.8 * figures


HEAVY = ["ps6_mini_gpt", "ps7_policy_gradients", "ps8_fine_tuning"]


def test_leaving_cells_out_gives_the_scores_of_running_every_cell(tmp_path):
    """The proof on real submissions: the demo students and a batch of catalog mistakes per assignment, graded both ways."""
    students = ["perfect", "typical_mistakes", "mistakes"]
    course_copy = submit_batch(tmp_path / "course", HEAVY, students[:2])
    for assignment in HEAVY:
        solutions = course_copy.solutions(assignment)
        batch = catalog.batches(list(catalog.load(assignment, course_copy.root).MUTANTS))[0]
        course_copy.submit("mistakes", assignment, {**solutions, **{f: e.code.strip() for f, e in batch.items()}})
    done = autograde(course_copy, HEAVY, "--jobs", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    left_out = batch_scores(course_copy, HEAVY, students)
    notebook = nbformat.read(course.autograded_notebook(course_copy.root, "ps8_fine_tuning", "perfect"), as_version=4)
    fine_tuning = next(c for c in notebook.cells if course.grade_id(c) == "fine_tuning_experiment")
    assert fine_tuning.outputs == [], "the fine-tuning experiment ran while grading"
    with open(course_copy.root / "nbgrader_config.py", "a") as config:
        config.write("\nc.SandboxedExecute.skip_independent_cells = False\n")
    done = autograde(course_copy, HEAVY, "--jobs", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    notebook = nbformat.read(course.autograded_notebook(course_copy.root, "ps8_fine_tuning", "perfect"), as_version=4)
    assert next(c for c in notebook.cells if course.grade_id(c) == "fine_tuning_experiment").outputs, "every cell should run"
    assert batch_scores(course_copy, HEAVY, students) == left_out
    assert all(sum(s for s, _ in left_out[(a, "perfect")].values()) == sum(m for _, m in left_out[(a, "perfect")].values()) for a in HEAVY)
    assert all(left_out[(a, "mistakes")] != left_out[(a, "perfect")] for a in HEAVY)
