"""The code of one submission, parsed once, and the two static checks run over it in the trusted process.

- Reflection (`reflection.py`): private or reflective access anywhere in the student's cells
  refuses every exercise.
- Forbidden APIs (`forbidden.py`): an exercise's own list, over the code its function can run
  (its solution cell and the helpers it names in other cells), not over experiments elsewhere.

The student's cells are the solution cells and any cell without nbgrader's lock; locked cells and
test cells are the instructor's (nbgrader restores them from the gradebook), so only their imports
count (what `F` means).
"""

import ast
import contextlib
import functools
from dataclasses import dataclass, field

from IPython.core.inputtransformer2 import TransformerManager
from nbgrader.utils import is_grade, is_locked

from . import reflection
from .memo import per_source
from .course import grade_id
from .forbidden import defined_methods, find_forbidden, import_aliases, reachable

_manager = TransformerManager()


@per_source
def python_source(source):
    """A cell's source as IPython runs it: plain Python (magics become calls)."""
    return _manager.transform_cell(source)


def parse(source):
    """The syntax tree of a cell as IPython runs it (magics become calls), or None if it does not parse."""
    with contextlib.suppress(SyntaxError, ValueError):
        return ast.parse(python_source(source))
    return None


def is_student_cell(cell):
    """A cell whose code is the student's: nbgrader restores every locked cell (test cells included) when grading."""
    return not is_locked(cell)


@dataclass
class SubmissionCode:
    """{label: syntax tree} of the student's cells (a solution cell is labelled by its grade id), and the aliases of all cells."""

    trees: dict
    aliases: dict = field(default_factory=dict)
    check_reflection: bool = True
    unparsed: dict = field(default_factory=dict)    # label -> SyntaxError message, for solution cells
    support: list = field(default_factory=list)     # syntax trees of the instructor's locked cells (not test cells)

    @classmethod
    def from_cells(cls, cells):
        """From a notebook's code cells (what the grader runs)."""
        trees, unparsed, aliases, support = {}, {}, {"torch": "torch"}, []
        for number, cell in enumerate(cells, 1):
            tree = parse(cell.source)
            if tree is not None:
                aliases.update(import_aliases(tree))
            if not is_student_cell(cell):
                if tree is not None and not is_grade(cell):
                    support.append(tree)
                continue
            label = grade_id(cell) or f"cell {number}"
            if tree is not None:
                trees[label] = tree
            elif grade_id(cell):
                try:
                    ast.parse(python_source(cell.source))
                except SyntaxError as error:
                    unparsed[label] = str(error)
        return cls(trees, aliases, True, unparsed, support)

    @classmethod
    def from_history(cls, sources, function):
        """From a kernel's history (an instructor running a notebook): the last cell defining `function` is its solution."""
        trees, aliases = {}, {"torch": "torch"}
        for number, source in enumerate(sources, 1):
            tree = parse(source)
            if tree is None:
                continue
            aliases.update(import_aliases(tree))
            defines = any(isinstance(n, ast.FunctionDef) and n.name == function for n in tree.body)
            trees[function if defines else f"cell {number}"] = tree
        return cls(trees, aliases, check_reflection=False)

    @functools.cached_property
    def reflection(self):
        """[(label, line, what)] of private or reflective access in the student's cells."""
        if not self.check_reflection:
            return []
        return [(label, line, what) for label, tree in self.trees.items() for line, what in reflection.find_reflection(tree, self.aliases)]

    def forbidden_uses(self, function, forbidden, skip=()):
        """[(line, what)] of the exercise's forbidden APIs in what `function` can run, or None without a solution cell."""
        if function not in self.trees:
            return None
        own_methods = defined_methods(self.trees.values())
        found = []
        for tree in reachable(function, self.trees, skip):
            module = tree if isinstance(tree, ast.Module) else ast.Module(body=[tree], type_ignores=[])
            found += find_forbidden(module, forbidden, own_methods=own_methods, aliases=self.aliases)
        return sorted(set(found))
