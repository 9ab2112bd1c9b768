"""A graded test cell's result, as data: what the checks found, the score, and the mistakes named.

A test cell publishes one `execute_result` whose bundle carries the same result three ways:

    text/plain                         the score as a number (nbgrader reads partial credit from it)
    text/html                          the report a student reads (feedback pages, JupyterLab)
    application/vnd.mfml.result+json   the report as data (item analysis, exports, validation, tests)

`read_cell` is the one reader: nothing parses the human-readable text back.
"""

import html
from dataclasses import asdict, dataclass, field

MIME = "application/vnd.mfml.result+json"


@dataclass
class CheckResult:
    title: str
    passed: bool
    message: str = ""
    mistake: str = ""        # the name of the known mistake this failure matches ("" if none)


@dataclass
class Report:
    """What a test cell shows: one line per check, each distinct mistake once, and the fraction that passed."""

    function: str
    max_points: float = 1.0
    checks: list = field(default_factory=list)
    fixes: dict = field(default_factory=dict)      # mistake name -> how to fix it
    refusal: str = ""        # set when the exercise is refused outright (forbidden API, not defined)

    def add(self, title, failure=None):
        """Record one check: passed when `failure` is None, else a CheckFailed (or any exception with a message)."""
        if failure is None:
            self.checks.append(CheckResult(title, True))
            return
        mistake = getattr(failure, "mistake", None)
        if mistake is not None:
            self.fixes.setdefault(mistake.name, mistake.fix)
        self.checks.append(CheckResult(title, False, str(failure), mistake.name if mistake is not None else ""))

    @property
    def fraction(self):
        if self.refusal or not self.checks:
            return 0.0
        return sum(c.passed for c in self.checks) / len(self.checks)

    @property
    def points(self):
        """Partial credit as nbgrader wants it: a float between 0 and the cell's points."""
        return round(self.fraction * self.max_points, 4)

    @property
    def mistakes(self):
        """{mistake name: [titles of the failing checks it explains]}, in the order they were found."""
        named = {}
        for check in self.checks:
            if check.mistake:
                named.setdefault(check.mistake, []).append(check.title)
        return named

    def headline(self):
        passed = sum(c.passed for c in self.checks)
        if self.refusal:
            return f"Hidden tests for {self.function}: 0 of {self.max_points:g} points"
        return f"Hidden tests for {self.function}: {passed} of {len(self.checks)} checks passed ({self.points:g} of {self.max_points:g} points)"

    def text(self):
        """The report as plain text (a terminal, a Gradescope export)."""
        if self.refusal:
            return f"{self.headline()}.\n  {self.refusal}"
        lines = [self.headline()]
        for check in self.checks:
            lines.append(f"  {'PASS' if check.passed else 'FAIL'}  {check.title}")
            lines += [f"        {line}" for line in check.message.splitlines()]
        for name, titles in self.mistakes.items():
            lines.append(f"  Likely mistake: {name}. {self.fixes.get(name, '')}")
            lines.append(f"        (explains {_checks(titles)})")
        return "\n".join(lines)

    def html(self):
        """The report as HTML: every piece of text escaped (messages can quote student output)."""
        e = html.escape
        parts = [f'<div class="mfml-report"><div class="mfml-headline"><b>{e(self.headline())}</b></div>']
        if self.refusal:
            parts.append(f'<pre class="mfml-refusal">{e(self.refusal)}</pre>')
        else:
            parts.append("<ul>")
            for check in self.checks:
                status = "PASS" if check.passed else "FAIL"
                message = f"<pre>{e(check.message)}</pre>" if check.message else ""
                parts.append(f'<li class="mfml-{status.lower()}"><b>{status}</b> {e(check.title)}{message}</li>')
            parts.append("</ul>")
            for name, titles in self.mistakes.items():
                parts.append(f'<div class="mfml-mistake"><b>Likely mistake: {e(name)}.</b> {e(self.fixes.get(name, ""))} '
                             f"<em>(explains {e(_checks(titles))})</em></div>")
        parts.append("</div>")
        return "".join(parts)

    def bundle(self):
        """The test cell's execute_result data: score, readable report, and the report as data."""
        return {"text/plain": repr(self.points), "text/html": self.html(), MIME: asdict(self)}

    def _repr_mimebundle_(self, include=None, exclude=None):  # an IPython kernel displays a Report as its bundle
        return self.bundle()

    @classmethod
    def from_data(cls, data):
        """The Report a bundle's JSON part describes."""
        report = cls(data["function"], data["max_points"], refusal=data.get("refusal", ""), fixes=dict(data.get("fixes", {})))
        report.checks = [CheckResult(**c) for c in data.get("checks", [])]
        return report


def _checks(titles):
    return f"the failing check '{titles[0]}'" if len(titles) == 1 else f"{len(titles)} failing checks: " + "; ".join(f"'{t}'" for t in titles)


@dataclass
class CellResult:
    """One graded test cell after grading: the hidden checks' report and what the visible tests raised."""

    report: Report = None     # None when the cell has no result (it never ran)
    visible_error: str = ""   # "AssertionError: ..." when a visible test of the cell failed
    printed: str = ""         # what the visible tests printed

    def text(self):
        """Everything the cell says, as plain text."""
        return "\n".join(filter(None, [self.report.text() if self.report else "", self.printed, self.visible_error]))


def read_cell(cell):
    """The CellResult of a graded test cell of an autograded notebook."""
    result = CellResult()
    for output in cell.get("outputs", []):
        if output.get("output_type") == "execute_result" and MIME in output.get("data", {}) and result.report is None:
            result.report = Report.from_data(output["data"][MIME])
        elif output.get("output_type") == "error" and not result.visible_error:
            result.visible_error = f"{output.get('ename', '')}: {output.get('evalue', '')}"
        elif output.get("output_type") == "stream":
            result.printed += output.get("text", "")
    return result
