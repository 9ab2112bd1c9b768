"""The one way hidden checks run, for grading and for pytest alike: refuse, then run every check.

    exercise = prepare(assignment, function)                       # the Exercise, with its stand-ins
    refusal(exercise, student, code)                               # '' or why it scores 0 unchecked
    for check in checks(type(exercise)): run_check(exercise, check, student)   # None or CheckFailed

`run_exercise` puts them together into a `Report`; `grader_tests/conftest.py` makes each of them a
pytest item. The same rules hold in both: the stand-ins `make release` wrote, the forbidden APIs
and reflection read from the submission's code, and checks inherited from base classes.
"""

import inspect
from dataclasses import dataclass
from typing import Callable

import torch

from . import course, reflection
from .exercise import CheckFailed, Exercise
from .results import Report
from .student import StudentError


@dataclass(frozen=True)
class Check:
    """One `test_*` method of an exercise: `title` is what the report shows (its docstring's first line)."""

    name: str
    title: str
    method: Callable


def find_exercise(module, function):
    """The Exercise subclass in a hidden test module that grades `function`."""
    for value in vars(module).values():
        if inspect.isclass(value) and issubclass(value, Exercise) and value.function == function:
            return value
    raise LookupError(f"{module.__name__} has no Exercise for {function!r}")


def exercises(module):
    """Every Exercise subclass of a hidden test module that grades a function, in file order."""
    return [v for v in vars(module).values() if inspect.isclass(v) and issubclass(v, Exercise) and v.function]


def checks(exercise_class):
    """The exercise's checks: base classes' first, each class's in the order written; an override keeps its place."""
    found = {}
    for klass in reversed(exercise_class.__mro__):
        for name, member in vars(klass).items():
            if name.startswith("test_") and callable(member):
                found[name] = member if name not in found else found[name]
    return [Check(name, _title(name, getattr(exercise_class, name)), getattr(exercise_class, name)) for name in found]


def _title(name, method):
    doc = inspect.getdoc(method)
    return doc.splitlines()[0] if doc else name.removeprefix("test_").replace("_", " ")


def prepare(assignment, function, root=None):
    """The Exercise grading `function`, with the course's solutions of its `substitutes` (from `make release`)."""
    exercise = find_exercise(course.hidden_tests(assignment, root), function)()
    exercise.substitute_sources = course.stand_ins(assignment, root, exercise.substitutes)
    return exercise


def refusal(exercise, student, code=None):
    """Why the exercise scores 0 without running its checks ('' when the checks run).

    `code` (a SubmissionCode) is the submission's parsed cells: reflection anywhere, a solution
    cell that does not parse, or a forbidden API in what the function can run refuse it.
    """
    function = exercise.function
    try:
        if not student.defines(function):
            return f"`{function}` is not defined: did its solution cell run without errors?"
    except StudentError as error:  # the submission's process is gone: say why
        return str(error)
    if code is None:
        return ""
    if code.reflection:
        return reflection.describe(code.reflection)
    if function in code.unparsed:
        return f"the solution cell does not parse: {code.unparsed[function]}"
    found = code.forbidden_uses(function, exercise.forbidden, skip=exercise.substitutes)
    if found:
        uses = "; ".join(f"line {line}: {what}" for line, what in found)
        return f"{function} uses an API this exercise forbids ({uses}). Compute it yourself with basic tensor operations."
    return ""


def run_check(exercise, check, student):
    """Run one check on one thread (as in the sandbox: a float sum must not depend on the machine's cores).

    None when it passes, else the CheckFailed the report shows.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        check.method(exercise, student)
    except CheckFailed as failure:
        return failure
    except BaseExceptionGroup as group:  # several failures at once (property checks): report the first
        first = group.exceptions[0]
        return first if isinstance(first, CheckFailed) else CheckFailed(f"{type(first).__name__}: {first}")
    except Exception as error:  # noqa: BLE001 - a broken check must still leave a readable report
        return CheckFailed(f"the check could not run: {type(error).__name__}: {error}")
    finally:
        torch.set_num_threads(threads)
    return None


def run_exercise(assignment, function, student, points, code=None, root=None, until_named=None):
    """Grade one function worth `points`: refuse reflection and forbidden APIs (read from `code`, a SubmissionCode), then run every check.

    `until_named` (the author's loop, for a known mistake): stop at the first check that names it.
    """
    exercise = prepare(assignment, function, root)
    report = Report(function, points)
    report.refusal = refusal(exercise, student, code)
    if not report.refusal:
        for check in checks(type(exercise)):
            report.add(check.title, run_check(exercise, check, student))
            if until_named is not None and until_named in report.mistakes:
                break
    return report
