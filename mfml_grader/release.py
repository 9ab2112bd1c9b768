"""`make release`: nbgrader's generate_assignment for every assignment, never losing release/,
and the stand-ins grading needs (`course.stand_ins_file`), so that grading never reads source/.

nbgrader removes an assignment's release folder before it converts the source, so a refusal (a
source notebook that does not read, graded cells changed after students were graded) used to
leave release/ without its notebook. Here the old release is kept aside and put back when
nbgrader refuses, and the message says why and what to do.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from . import course, figures
from .judge.batch import nbgrader_env
from .runner import exercises
from .submissions import answers_from_source

ADVICE = {
    "submissions associated with it": "the gradebook already holds graded submissions of this assignment and nbgrader will not change "
                       "its graded cells: keep the cells as they were, or start from an empty gradebook (`make clean`).",
    "NotJSONError": "the source notebook is not valid JSON: open it in JupyterLab, or restore it with git.",
    "duplicate": "two cells have the same grade_id: give each cell its own id in the nbgrader cell toolbar.",
}


def release(root, assignment, out=sys.stderr):
    """Generate release/<assignment>; on failure put the previous release back and return the reason ('' on success)."""
    folder = Path(root) / "release" / assignment
    with tempfile.TemporaryDirectory() as keep:
        kept = Path(keep) / assignment
        if folder.exists():
            shutil.copytree(folder, kept)
        done = subprocess.run(["nbgrader", "generate_assignment", assignment, "--force", "--log-level=WARN"], cwd=root,
                              env=nbgrader_env(), capture_output=True, text=True)
        if done.returncode == 0:
            write_figures(root, assignment)
            return write_stand_ins(root, assignment, out)
        if kept.exists():
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(kept, folder)
    log = (done.stdout + done.stderr).strip()
    errors = [line for line in log.splitlines() if "ERROR" in line or "Error" in line] or log.splitlines()[-3:]
    advice = next((text for key, text in ADVICE.items() if key in log), "see the messages above.")
    reason = "\n  ".join(errors[-4:])
    print(f"nbgrader refused to release {assignment}; release/{assignment} is unchanged.\n  {reason}\nWhat to do: {advice}", file=out)
    return reason or "nbgrader failed"


def write_figures(root, assignment):
    """Give the release notebook's figure cells their figures, rendered from the source notebook: students
    see them before running anything, and grading shows them without drawing them again for every student."""
    drawn = figures.render(course.source_notebook(assignment, root))
    path = course.release_notebook(assignment, root)
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if figures.is_figure_cell(cell) and drawn.get(course.grade_id(cell)):
            cell.outputs = figures.display_outputs(drawn[course.grade_id(cell)])
    nbformat.write(notebook, path)


def write_stand_ins(root, assignment, out=sys.stderr):
    """Write the course's solutions of the helpers the hidden checks substitute; return '' or why it could not."""
    wanted = sorted({name for exercise in exercises(course.hidden_tests(assignment, root)) for name in exercise.substitutes})
    solutions = answers_from_source(nbformat.read(course.source_notebook(assignment, root), as_version=4))
    missing = [name for name in wanted if name not in solutions]
    if missing:
        reason = f"grader_tests/test_{assignment}.py substitutes {', '.join(missing)}, which no solution cell of the source notebook defines"
        print(f"{reason}.\nWhat to do: give that solution cell the helper's name as its grade_id, or remove it from `substitutes`.", file=out)
        return reason
    path = course.stand_ins_file(assignment, root)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({name: solutions[name] for name in wanted}, indent=1, ensure_ascii=False) + "\n")
    return ""


TABLE_START, TABLE_END = "<!-- assignments: written by `make release` -->", "<!-- end of assignments -->"


def assignments_table(root):
    """The README's table of assignments, exercises and points, read from the release notebooks."""
    rows = ["| assignment | exercises (points) | total |", "|---|---|---|"]
    for assignment in course.assignments(root):
        cells = [c for c in nbformat.read(course.release_notebook(assignment, root), as_version=4).cells if course.is_test_cell(c)]
        points = [(course.grade_id(c).removeprefix("test_"), c.metadata.nbgrader.points) for c in cells]
        listed = ", ".join(f"`{function}` ({value:g})" for function, value in points)
        rows.append(f"| `{assignment}` | {listed} | {sum(value for _, value in points):g} |")
    return "\n".join(rows)


def write_readme_table(root):
    """Put the assignments table between the README's markers (a course copy without README.md has none)."""
    readme = Path(root) / "README.md"
    if not readme.exists():
        return
    text = readme.read_text()
    before, _, rest = text.partition(TABLE_START)
    _, _, after = rest.partition(TABLE_END)
    readme.write_text(f"{before}{TABLE_START}\n{assignments_table(root)}\n{TABLE_END}{after}")


def main(root, assignments=()):
    failed = [a for a in (assignments or course.assignments(root)) if release(root, a)]
    write_readme_table(root)
    return 1 if failed else 0
