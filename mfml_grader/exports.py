"""Grades for other systems: Gradescope `results.json` per submission, and a Canvas gradebook CSV.

    exports/gradescope/<assignment>/<student>/results.json
    exports/canvas.csv

Gradescope's autograder format: a total `score`, and one test per exercise with its `name`,
`score`, `max_score`, `output` (the test cell's report) and `visibility`. Canvas imports a CSV whose
first columns identify the student and whose other columns are assignments; the "Points Possible"
row gives each assignment's maximum.
"""

import csv
import json
from pathlib import Path

from . import course
from .gradebook import graded_submissions, open_gradebook, test_cell_grades

CANVAS_ID_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


def gradescope(root, out_dir):
    """Write results.json for every graded submission; return how many."""
    written = 0
    for assignment, student, submission in graded_submissions(root):
        outputs = course.test_cell_outputs(root, assignment, student)
        tests = [{"name": function, "score": grade.score or 0.0, "max_score": grade.max_score, "output": outputs.get(function, ""),
                  "visibility": "visible"} for function, grade in test_cell_grades(submission).items()]
        results = {"score": round(sum(t["score"] for t in tests), 4), "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}
        path = Path(out_dir) / assignment / student / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1))
        written += 1
    return written


def canvas(root, path):
    """Write a Canvas gradebook CSV (one row per student, one column per assignment)."""
    from nbgrader.api import MissingEntry

    with open_gradebook(root) as gradebook:
        assignments = sorted(gradebook.assignments, key=lambda a: a.name)
        rows = [[*CANVAS_ID_COLUMNS, *(a.name for a in assignments)],
                ["Points Possible", "", "", "", "", *(f"{a.max_score:g}" for a in assignments)]]
        for student in sorted(gradebook.students, key=lambda s: s.id):
            name = " ".join(filter(None, (student.first_name, student.last_name))) or student.id
            scores = []
            for assignment in assignments:
                try:
                    scores.append(f"{gradebook.find_submission(assignment.name, student.id).score:g}")
                except MissingEntry:
                    scores.append("")
            rows.append([name, student.id, student.id, student.id, "", *scores])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return len(rows) - 2
