"""Run one exercise's hidden checks against a student and turn them into a score and a report."""

import inspect

from . import course, reflection
from .exercise import CheckFailed, Exercise
from .results import Report
from .student import StudentError


def find_exercise(module, function):
    """The Exercise subclass in a hidden test module that grades `function`."""
    for value in vars(module).values():
        if inspect.isclass(value) and issubclass(value, Exercise) and value.function == function:
            return value
    raise LookupError(f"{module.__name__} has no Exercise for {function!r}")


def check_methods(exercise_class):
    """The exercise's checks, in the order they are written: (name, bound-method factory)."""
    methods = [(name, member) for name, member in vars(exercise_class).items() if name.startswith("test_") and callable(member)]
    return methods


def check_title(name, method):
    doc = inspect.getdoc(method)
    return doc.splitlines()[0] if doc else name.removeprefix("test_").replace("_", " ")


def run_exercise(assignment, function, student, points, code=None, root=None):
    """Grade one function worth `points`: refuse reflection and forbidden APIs (read from `code`, a SubmissionCode), then run every check."""
    exercise_class = find_exercise(course.hidden_tests(assignment, root), function)
    report = Report(function, points)
    try:
        defined = student.defines(function)
    except StudentError as error:  # the submission's process is gone: say why
        report.refusal = str(error)
        return report
    if not defined:
        report.refusal = f"`{function}` is not defined: did its solution cell run without errors?"
        return report
    if code is not None:
        report.refusal = _refusal(function, exercise_class, code)
        if report.refusal:
            return report
    exercise = exercise_class()
    exercise.substitute_sources = {name: course.solution_sources(assignment, root)[name] for name in exercise_class.substitutes}
    for name, method in check_methods(exercise_class):
        title = check_title(name, method)
        try:
            method(exercise, student)
        except CheckFailed as failure:
            report.add(title, failure)
        except BaseExceptionGroup as group:  # several failures at once (property checks): report the first
            first = group.exceptions[0]
            report.add(title, first if isinstance(first, CheckFailed) else CheckFailed(f"{type(first).__name__}: {first}"))
        except Exception as error:  # noqa: BLE001 - a broken check must still leave a readable report
            report.add(title, CheckFailed(f"the check could not run: {type(error).__name__}: {error}"))
        else:
            report.add(title)
    return report


def _refusal(function, exercise_class, code):
    """Why the exercise scores 0 without running its checks, or ''."""
    if code.reflection:
        return reflection.describe(code.reflection)
    if function in code.unparsed:
        return f"the solution cell does not parse: {code.unparsed[function]}"
    found = code.forbidden_uses(function, exercise_class.forbidden, skip=exercise_class.substitutes)
    if found:
        uses = "; ".join(f"line {line}: {what}" for line, what in found)
        return f"{function} uses an API this exercise forbids ({uses}). Compute it yourself with basic tensor operations."
    return ""
