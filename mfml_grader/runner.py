"""Run one exercise's hidden checks against a student and turn them into a score and a report."""

import inspect
from dataclasses import dataclass, field

from . import course, reflection
from .exercise import CheckFailed, Exercise
from .student import StudentError


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str = ""


@dataclass
class Report:
    """What a test cell shows: one line per check, and the fraction that passed."""

    function: str
    checks: list = field(default_factory=list)
    refusal: str = ""        # set when the exercise is refused outright (forbidden API, not defined)

    @property
    def fraction(self):
        if self.refusal or not self.checks:
            return 0.0
        return sum(c.passed for c in self.checks) / len(self.checks)

    def points(self, max_points):
        """Partial credit as nbgrader wants it: a float between 0 and the cell's points."""
        return round(self.fraction * max_points, 4)

    def text(self, max_points):
        passed = sum(c.passed for c in self.checks)
        head = f"Hidden tests for {self.function}: "
        if self.refusal:
            return f"{head}0 of {max_points:g} points.\n  {self.refusal}"
        lines = [f"{head}{passed} of {len(self.checks)} checks passed ({self.points(max_points):g} of {max_points:g} points)"]
        for check in self.checks:
            lines.append(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}")
            if check.message:
                lines += [f"        {line}" for line in check.message.splitlines()]
        return "\n".join(lines)


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


def run_exercise(assignment, function, student, code=None, root=None):
    """Grade one function: refuse reflection and forbidden APIs (read from `code`, a SubmissionCode), then run every check."""
    exercise_class = find_exercise(course.hidden_tests(assignment, root), function)
    report = Report(function)
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
            report.checks.append(CheckResult(title, False, str(failure)))
        except BaseExceptionGroup as group:  # several failures at once (property checks): report the first
            first = group.exceptions[0]
            report.checks.append(CheckResult(title, False, str(first) if isinstance(first, CheckFailed) else f"{type(first).__name__}: {first}"))
        except Exception as error:  # noqa: BLE001 - a broken check must still leave a readable report
            report.checks.append(CheckResult(title, False, f"the check could not run: {type(error).__name__}: {error}"))
        else:
            report.checks.append(CheckResult(title, True))
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
