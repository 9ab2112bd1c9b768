"""The item-analysis report and the grade exports, made from the graded catalog batch."""

import base64
import csv
import io
import json
import re

import nbformat
import numpy
from PIL import Image

from mfml_grader import course, exports, item_analysis


def test_report_has_readable_plots_and_the_common_mistakes(graded_course):
    root, _ = graded_course
    page = item_analysis.write(root, root / "reports", threshold=50).read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 3 * len(course.assignments(root)), "expected a distribution, a per-exercise and a mistakes plot per assignment"
    for encoded in images:
        pixels = numpy.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("L"), dtype=float)
        assert pixels.std() > 10 and pixels.shape[0] > 100, "a plot is blank"
    assert "no 1/√d_k scaling" in page and "Students below 50%" in page and "stub" in page


def test_exports_agree_with_the_gradebook(graded_course):
    root, _ = graded_course
    written = exports.gradescope(root, root / "exports" / "gradescope")
    assert written > 50
    test_cells = [c for c in nbformat.read(course.release_notebook("ps1_linear_algebra", root), as_version=4).cells if course.is_test_cell(c)]
    total = sum(c.metadata.nbgrader.points for c in test_cells)
    results = json.loads((root / "exports" / "gradescope" / "ps1_linear_algebra" / "solution" / "results.json").read_text())
    assert results["score"] == total and len(results["tests"]) == len(test_cells)
    assert all(t["score"] == t["max_score"] and t["visibility"] == "visible" and "Hidden tests for" in t["output"] for t in results["tests"])
    stub = json.loads((root / "exports" / "gradescope" / "ps1_linear_algebra" / "stub" / "results.json").read_text())
    assert stub["score"] == 0
    exports.canvas(root, root / "exports" / "canvas.csv")
    rows = list(csv.reader(open(root / "exports" / "canvas.csv")))
    header, points = rows[0], rows[1]
    assert header[:5] == list(exports.CANVAS_ID_COLUMNS) and points[0] == "Points Possible"
    solution = next(r for r in rows if r[1] == "solution")
    assert float(solution[header.index("ps1_linear_algebra")]) == total
