"""Item analysis after a batch: how the class did and which mistakes were common (`make report`).

Reads the gradebook and the autograded notebooks (whose test cells name the mistakes they
recognised) and writes `reports/index.html` with matplotlib figures: the score distribution of each
assignment, mean score and pass rate of each exercise, the most frequent named mistakes of each
exercise, and the students below a threshold.
"""

import base64
import html
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from . import course
from .gradebook import graded_submissions, test_cell_grades

PASS_FRACTION = 0.5


@dataclass
class Cell:
    score: float
    max_score: float
    mistakes: list = field(default_factory=list)


def collect(root):
    """{assignment: {student: {exercise: Cell}}} from the gradebook and the autograded notebooks."""
    data = defaultdict(dict)
    for assignment, student, submission in graded_submissions(root):
        cells = {function: Cell(grade.score or 0.0, grade.max_score) for function, grade in test_cell_grades(submission).items()}
        for exercise, mistakes in named_mistakes(Path(root), assignment, student).items():
            if exercise in cells:
                cells[exercise].mistakes = mistakes
        data[assignment][student] = cells
    return data


def named_mistakes(root, assignment, student):
    """{exercise: [mistake names]} as the autograded notebook's test cells published them."""
    return {e: sorted(r.report.mistakes) if r.report else [] for e, r in course.test_cell_results(root, assignment, student).items()}


def _figure(draw, width=7.0, height=3.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    draw(ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def assignment_section(assignment, students, threshold):
    totals = {s: (sum(c.score for c in cells.values()), sum(c.max_score for c in cells.values())) for s, cells in students.items()}
    percents = [100 * got / maximum if maximum else 0 for got, maximum in totals.values()]
    exercises = list(next(iter(students.values())))

    def distribution(ax):
        ax.hist(percents, bins=[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100.001], color="#4878a8", edgecolor="white")
        ax.set_xlabel("score (%)")
        ax.set_ylabel("students")
        ax.set_title(f"{assignment}: score distribution ({len(percents)} students)")

    means = [100 * sum(students[s][e].score for s in students) / max(1e-9, sum(students[s][e].max_score for s in students)) for e in exercises]
    passes = [100 * sum(students[s][e].score >= PASS_FRACTION * students[s][e].max_score for s in students) / len(students) for e in exercises]

    def per_exercise(ax):
        positions = range(len(exercises))
        ax.bar([p - 0.2 for p in positions], means, width=0.4, label="mean score (%)", color="#4878a8")
        ax.bar([p + 0.2 for p in positions], passes, width=0.4, label=f"passed (≥ {PASS_FRACTION:.0%} of points)", color="#e0a030")
        ax.set_xticks(list(positions), exercises, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 105)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=2)
        ax.set_title("per exercise")

    counts = {e: Counter(m for s in students for m in students[s][e].mistakes) for e in exercises}
    common = [(e, m, n) for e in exercises for m, n in counts[e].most_common(3)]

    def mistakes(ax):
        labels = [f"{e}: {m}"[:70] for e, m, _ in common][::-1]
        from matplotlib.ticker import MaxNLocator

        ax.barh(range(len(labels)), [n for _, _, n in common][::-1], color="#c05050")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel("students")
        ax.set_title("most frequent named mistakes")

    parts = [f"<h2>{html.escape(assignment)}</h2>", _figure(distribution), _figure(per_exercise, height=4.0)]
    if common:
        parts.append(_figure(mistakes, width=9, height=0.4 * len(common) + 1.2))
        rows = "".join(f"<tr><td>{html.escape(e)}</td><td>{html.escape(m)}</td><td>{n}</td></tr>" for e, m, n in common)
        parts.append(f"<table><tr><th>exercise</th><th>mistake</th><th>students</th></tr>{rows}</table>")
    below = sorted((p, s) for s, p in zip(totals, percents) if p < threshold)
    listed = "".join(f"<li>{html.escape(s)}: {p:.0f}%</li>" for p, s in below) or "<li>none</li>"
    parts.append(f"<h3>Students below {threshold:.0f}%</h3><ul>{listed}</ul>")
    return "\n".join(parts)


def write(root, out_dir=None, threshold=50.0):
    """Write the report; return the path of its index.html."""
    root = Path(root)
    data = collect(root)
    out = Path(out_dir or root / "reports")
    out.mkdir(parents=True, exist_ok=True)
    sections = [assignment_section(a, students, threshold) for a, students in sorted(data.items()) if students]
    body = "\n".join(sections) or "<p>No graded submissions yet: run <code>make autograde</code>.</p>"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Item analysis</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}} img{{max-width:100%}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}</style></head>
<body><h1>Item analysis</h1>{body}</body></html>"""
    path = out / "index.html"
    path.write_text(page)
    return path
