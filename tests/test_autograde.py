"""Grade the grader through real `nbgrader autograde`: solutions 100 %, stubs 0 %, every known
mistake loses points on its own cell only and is named, every correct variant gets full marks,
forbidden APIs are refused, stderr noise does not zero a correct answer."""

import pytest

from course_fixture import REPO, Course
from mfml_grader import catalog, course

ASSIGNMENTS = course.assignments(REPO)
NOISY_PRELUDE = '''import sys, warnings
warnings.warn("a deprecation warning from student code")
print("debug output on stderr", file=sys.stderr)
'''


def plan(assignment, solutions):
    """{student: (answers, {function: catalog entry})}: every catalog case, batched into notebooks."""
    cases = catalog.load(assignment, REPO)
    students = {"solution": (solutions, {}), "stub": ({}, {})}
    for kind in ("MUTANTS", "VARIANTS", "FORBIDDEN"):
        for i, batch in enumerate(catalog.batches(getattr(cases, kind))):
            answers = dict(solutions)
            answers.update({function: entry.code.strip("\n") for function, entry in batch.items()})
            students[f"{kind.lower()}-{i}"] = (answers, batch)
    # correct code that prints to stderr and warns inside the graded functions
    noisy = {f: NOISY_PRELUDE + code for f, code in solutions.items()}
    students["noisy"] = (noisy, {})
    return students


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request, tmp_path_factory):
    assignment = request.param
    grading = Course.copy_of_repo(tmp_path_factory.mktemp(assignment))
    grading.nbgrader("generate_assignment", assignment)
    students = plan(assignment, grading.solutions(assignment))
    for student, (answers, _) in students.items():
        grading.submit(student, assignment, answers)
    grading.nbgrader("autograde", assignment)
    return assignment, grading, students


def full(score):
    return score[0] == score[1]


def test_solutions_get_full_points(graded):
    assignment, grading, _ = graded
    scores = grading.scores(assignment, "solution")
    assert scores and all(full(s) for s in scores.values()), f"the reference solution lost points: {scores}"


def test_untouched_stubs_get_zero(graded):
    assignment, grading, _ = graded
    scores = grading.scores(assignment, "stub")
    assert all(s[0] == 0 for s in scores.values()), f"an untouched stub earned points: {scores}"


def test_stderr_noise_does_not_zero_a_correct_answer(graded):
    assignment, grading, _ = graded
    scores = grading.scores(assignment, "noisy")
    assert all(full(s) for s in scores.values()), f"correct code that warns and prints to stderr lost points: {scores}"


def test_each_mutant_loses_points_on_its_cell_only_and_is_named(graded):
    assignment, grading, students = graded
    for student, (_, batch) in students.items():
        if not student.startswith("mutants"):
            continue
        scores, feedback = grading.scores(assignment, student), grading.feedback_text(assignment, student)
        for function, score in scores.items():
            if function in batch:
                mutant = batch[function]
                assert not full(score), f"{student}: mutant '{mutant.mistake}' of {function} got full points"
                assert f"Likely mistake: {mutant.mistake}." in feedback[function], f"{student}: feedback for {function} does not name '{mutant.mistake}':\n{feedback[function]}"
            else:
                assert full(score), f"{student}: {function} has no mistake but lost points ({score}):\n{feedback[function]}"


def test_correct_variants_get_full_points(graded):
    assignment, grading, students = graded
    for student, (_, batch) in students.items():
        if student.startswith("variants"):
            scores = grading.scores(assignment, student)
            lost = {f: s for f, s in scores.items() if not full(s)}
            assert not lost, f"{student}: correct variants lost points {lost}: " + "; ".join(batch[f].description for f in lost if f in batch) + "\n" + "\n".join(grading.feedback_text(assignment, student)[f] for f in lost)


def test_forbidden_apis_are_refused_and_named(graded):
    assignment, grading, students = graded
    for student, (_, batch) in students.items():
        if not student.startswith("forbidden"):
            continue
        scores, feedback = grading.scores(assignment, student), grading.feedback_text(assignment, student)
        for function, entry in batch.items():
            assert scores[function][0] == 0, f"{function} using {entry.api} earned {scores[function]}"
            assert entry.api in feedback[function], f"feedback for {function} does not name {entry.api}:\n{feedback[function]}"
