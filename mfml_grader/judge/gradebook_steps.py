"""nbgrader's `OverwriteCells` and `SaveAutoGrades`, with the gradebook read once per notebook.

nbgrader's steps look each cell up on its own: OverwriteCells asks for every cell's source and
points, SaveAutoGrades for every grade and comment and commits after each one (about forty queries
and twenty commits per notebook, a fifth of what grading a notebook costs beyond running it). Here
nbgrader's own code runs unchanged, against a gradebook whose per-cell lookups of the one notebook
being graded are answered from a query per kind, and whose writes are committed once, at the end:
the same rows end up in the gradebook (tests/test_autograde.py compares them with nbgrader's steps).
"""

from nbgrader import api
from nbgrader.preprocessors import overwritecells, saveautogrades
from sqlalchemy.orm import joinedload

from .swap import swapped


class _OneNotebook:
    """A Gradebook whose lookups of one notebook's cells, grades and comments come from one query per kind.

    Everything else is the Gradebook's own. `commit()` of its `db` waits for `close()`, which commits
    once (or rolls back, when the step failed) and closes the Gradebook.
    """

    def __init__(self, db_url):
        self._gradebook = api.Gradebook(db_url)
        self._found = {}
        self.db = _CommitAtClose(self._gradebook.db)

    def __getattr__(self, name):
        return getattr(self._gradebook, name)

    def __enter__(self):
        return self

    def __exit__(self, error_type, error, traceback):
        try:
            if error_type is None:
                self.db.session.commit()
            else:
                self.db.session.rollback()
        finally:
            self._gradebook.close()

    def _lookup(self, kind, name, where, load, missing):
        """The entry `name` of `kind` in the notebook `where`, from one load of all of them (`load()` -> {name: entry})."""
        if (kind, *where) not in self._found:
            self._found[(kind, *where)] = load()
        table = self._found[(kind, *where)]
        if name not in table:
            raise api.MissingEntry(missing)
        return table[name]

    def find_source_cell(self, name, notebook, assignment):
        return self._lookup("source", name, (notebook, assignment),
                            lambda: {cell.name: cell for cell in self._gradebook.find_notebook(notebook, assignment).source_cells},
                            f"No such source cell: {assignment}/{notebook}/{name}")

    def find_graded_cell(self, name, notebook, assignment):
        def load():
            found = self._gradebook.find_notebook(notebook, assignment)
            return {cell.name: cell for cell in [*found.task_cells, *found.grade_cells]}   # a grade cell first, as nbgrader looks
        return self._lookup("graded", name, (notebook, assignment), load, f"No such grade cell: {assignment}/{notebook}/{name}")

    def _submitted(self, model, notebook, assignment, student, first):
        """{cell name: Grade or Comment} of a student's notebook; where two share a name, the one on a `first` cell."""
        submitted = self._gradebook.find_submission_notebook(notebook, assignment, student)
        rows = self.db.session.query(model).filter(model.notebook_id == submitted.id).options(joinedload(model.cell)).all()
        return {row.cell.name: row for row in sorted(rows, key=lambda row: isinstance(row.cell, first))}

    def find_grade(self, grade_cell, notebook, assignment, student):
        return self._lookup("grade", grade_cell, (notebook, assignment, student),
                            lambda: self._submitted(api.Grade, notebook, assignment, student, api.GradeCell),
                            f"No such grade: {assignment}/{notebook}/{grade_cell} for {student}")

    def find_comment(self, solution_cell, notebook, assignment, student):
        return self._lookup("comment", solution_cell, (notebook, assignment, student),
                            lambda: self._submitted(api.Comment, notebook, assignment, student, api.SolutionCell),
                            f"No such taskcomment: {assignment}/{notebook}/{solution_cell} for {student}")


class _CommitAtClose:
    """The Gradebook's session, except that `commit()` does nothing: the one commit happens when the Gradebook closes."""

    def __init__(self, session):
        self.session = session

    def __getattr__(self, name):
        return getattr(self.session, name)

    def commit(self):
        pass


class OverwriteCells(overwritecells.OverwriteCells):
    """nbgrader's OverwriteCells (the same changes, warnings and errors), reading the notebook's cells in one query per kind."""

    def preprocess(self, nb, resources):
        with swapped(overwritecells, "Gradebook", _OneNotebook):
            return super().preprocess(nb, resources)


class SaveAutoGrades(saveautogrades.SaveAutoGrades):
    """nbgrader's SaveAutoGrades (the same grades and comments), reading them in one query each and committing once."""

    def preprocess(self, nb, resources):
        with swapped(saveautogrades, "Gradebook", _OneNotebook):
            return super().preprocess(nb, resources)
