"""Instructor cells that cannot change a grade, so grading need not run them.

A grade comes from the test cells: their visible tests and the hidden checks they start, which
call the student's functions. Experiments and figures (the notebook's teaching) take most of a
notebook's time and feed no grade: they run in the student's JupyterLab, and `make release` draws
the figures once. A cell is left out of grading when all of this holds, decided here from the
code alone, in the trusted process, for each submission:

1. It is an instructor's cell: nbgrader-locked, neither a solution nor a test, with exactly the
   release's source (nbgrader has already put the instructor's source back).
2. Nothing that runs reads what it binds: no name it binds (assigned, defined, imported, deleted,
   `global` in a function, `:=`) is read by a cell that runs after it before binding it again, by a
   function of a cell that runs, or by the hidden checks (the exercises' functions and the parts the
   course stands in for), following each function to the names it reads.
3. It cannot change what runs: the data it reaches, itself or through the functions it calls
   (names made by cells that ran before it), is read by nothing that runs afterwards, constants
   excepted; a function with memory between calls (global, nonlocal, a mutable default, class
   attributes) counts as data; and it stores nothing into a module.
4. No cell of the submission reaches names by other means than writing them (`globals()`, `eval`,
   `exec`, frames, `get_ipython`, magics, a cell that does not parse...): then every cell runs.

Cells are dropped together (a plot cell that reads an experiment's results goes with it), until
no more can go. Whatever is in doubt runs, so a submission is never graded on less than it needs.
What stays process-wide (the global random generator, torch's defaults) is not read by the course's
checks, which bring their own generators and dtypes. `make bench` and tests/test_independent.py
grade the same submissions with and without leaving cells out and require the same scores.
"""

import ast
import builtins
import functools
import symtable
from dataclasses import dataclass

from ..course import grade_id, is_test_cell
from ..memo import per_source
from ..submission_code import python_source

# Names and attributes that reach a namespace without writing its names (a method called `eval` is no concern).
DYNAMIC_NAMES = frozenset({"globals", "locals", "vars", "eval", "exec", "compile", "__import__", "get_ipython", "__main__",
                           "__builtins__", "builtins", "sys", "inspect", "importlib", "gc", "ctypes"})
DYNAMIC_ATTRIBUTES = frozenset({"__dict__", "__globals__", "__builtins__", "__closure__", "__code__", "f_globals", "f_locals",
                                "f_back", "_getframe", "tb_frame", "gi_frame", "cr_frame"})
BUILTINS = frozenset(dir(builtins))
CHECKS = "the hidden checks"
COMPREHENSIONS = frozenset({"listcomp", "setcomp", "dictcomp", "genexpr"})


@dataclass(frozen=True)
class CellNames:
    """What one code cell does with the notebook's global names."""

    binds: frozenset        # global names it binds
    definitions: frozenset  # ... only by def, class or import at top level
    imports: frozenset      # ... by an import (modules, shared by every cell)
    constants: frozenset    # ... only to constants (numbers, strings, tuples of them)
    early: frozenset        # global names read as the cell runs, before the cell binds them
    late: frozenset         # global names read by the functions and classes it makes, when called
    late_unbound: frozenset  # ... of those, the ones the cell did not bind before making the function
    stores_into: frozenset  # names whose object it changes as it runs (`x.attr = ...`, `x[i] = ...`)
    dynamic: bool           # reaches names by other means than writing them (or does not parse)
    functions: tuple = ()   # (name, global names it reads when called, keeps state between calls) per def and class


@per_source
def names_of(source):
    """CellNames of one cell's source (IPython syntax allowed: magics count as dynamic, and so does a cell
    that does not parse or is too deeply nested to analyse)."""
    try:
        return _names_of(python_source(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return CellNames(*[frozenset()] * 8, True, ())


def _names_of(code):
    tree = ast.parse(code)
    table = symtable.symtable(code, "<cell>", "exec")
    binds = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    tables = list(table.get_children())
    while tables:
        current = tables.pop()
        binds |= {s.get_name() for s in current.get_symbols() if s.is_global() and s.is_assigned()}
        tables += current.get_children()
    late, late_unbound, bound, functions = set(), set(), set(), []
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            reads = _deferred_reads(ast.unparse(statement)) - BUILTINS
            late |= reads
            late_unbound |= reads - bound
            functions.append((statement.name, frozenset(reads), not _keeps_no_state(statement)))
        bound |= _always_binds(statement) & binds
    defined = {name for statement in tree.body for name in _defined_by(statement)}
    plain = (binds - defined) | {n.id for statement in tree.body if not _defined_by(statement) for n in ast.walk(statement)
                                 if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    constant_targets = {id(name) for statement in tree.body if isinstance(statement, ast.Assign) and _is_constant(statement.value)
                        for target in statement.targets for name in ast.walk(target) if isinstance(name, ast.Name)}
    stores = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))]
    constants = {n.id for n in stores if id(n) in constant_targets} - {n.id for n in stores if id(n) not in constant_targets}
    imports = {name for statement in tree.body if isinstance(statement, (ast.Import, ast.ImportFrom)) for name in _defined_by(statement)}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    return CellNames(frozenset(binds), frozenset(defined - plain), frozenset(imports),
                     frozenset(constants - defined), frozenset(_reads_before_binding(tree.body, frozenset(), binds) - BUILTINS),
                     frozenset(late), frozenset(late_unbound), frozenset(_changed_objects(tree.body)),
                     bool(names & DYNAMIC_NAMES or attributes & DYNAMIC_ATTRIBUTES), tuple(functions))


def _deferred_reads(code):
    """Global names read inside the functions and classes `code` defines (not in comprehensions, which run at once)."""
    reads, tables = set(), list(symtable.symtable(code, "<def>", "exec").get_children())
    while tables:
        current = tables.pop()
        if current.get_name() not in COMPREHENSIONS or current.get_type() != "function":
            reads |= {s.get_name() for s in current.get_symbols() if s.is_global() and s.is_referenced()}
        tables += current.get_children()
    return reads


def _changed_objects(statements):
    """Names whose objects these statements change as they run: targets `x.attr`, `x[i]`, `del x[i]` (function bodies wait)."""
    found, todo = set(), list(statements)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            base = node.value
            while isinstance(base, (ast.Attribute, ast.Subscript)):
                base = base.value
            if isinstance(base, ast.Name):
                found.add(base.id)
        todo += list(ast.iter_child_nodes(node))
    return found


def _is_constant(node):
    """An expression whose value cannot be changed in place: numbers, strings, None, and tuples or arithmetic of those."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Tuple):
        return all(_is_constant(e) for e in node.elts)
    if isinstance(node, ast.UnaryOp):
        return _is_constant(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_constant(node.left) and _is_constant(node.right)
    return False


def _reads_before_binding(statements, bound, binds):
    """Global names these statements read before binding them, in the order they run. A binding made inside a
    branch, a loop or a try counts only inside it (it may not happen); function bodies wait for a call."""
    reads = set()
    for statement in statements:
        reads |= _statement_reads(statement, bound, binds)
        bound = bound | (_always_binds(statement) & binds)
    return reads


def _statement_reads(statement, bound, binds):
    inner = functools.partial(_reads_before_binding, binds=binds)
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
        arguments = statement.args
        return _loads([*statement.decorator_list, *arguments.defaults, *(d for d in arguments.kw_defaults if d)]) - bound
    if isinstance(statement, ast.ClassDef):
        return (_loads([*statement.decorator_list, *statement.bases, *statement.keywords]) - bound) | inner(statement.body, bound)
    if isinstance(statement, (ast.For, ast.AsyncFor)):
        return ((_loads([statement.iter]) - bound) | inner(statement.body, bound | (_stored(statement.target) & binds))
                | inner(statement.orelse, bound))
    if isinstance(statement, (ast.While, ast.If)):
        return (_loads([statement.test]) - bound) | inner(statement.body, bound) | inner(statement.orelse, bound)
    if isinstance(statement, (ast.With, ast.AsyncWith)):
        targets = set().union(*(_stored(item.optional_vars) for item in statement.items if item.optional_vars))
        return (_loads([item.context_expr for item in statement.items]) - bound) | inner(statement.body, bound | (targets & binds))
    if isinstance(statement, ast.Try):
        handlers = set().union(*((_loads([h.type] if h.type else []) - bound) | inner(h.body, bound | ({h.name} & binds if h.name else set()))
                                 for h in statement.handlers))
        return inner(statement.body, bound) | handlers | inner(statement.orelse, bound) | inner(statement.finalbody, bound)
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return set()
    targets = statement.targets if isinstance(statement, ast.Assign) else [getattr(statement, "target", None)]
    if isinstance(statement, ast.AugAssign):
        return (_loads([statement.target, statement.value]) | _stored(statement.target)) - bound
    evaluated = [child for child in ast.iter_child_nodes(statement) if child not in targets]
    evaluated += [t for t in targets if t is not None and not isinstance(t, ast.Name)]   # obj.attr = ..., x[i] = ...
    return _loads(evaluated) - bound


def _loads(nodes):
    """Names loaded by these expressions as they are evaluated (lambda bodies wait; a comprehension's own variables are its own)."""
    loads, todo = set(), list(nodes)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            loads.add(node.id)
        elif isinstance(node, ast.Lambda):
            todo += [*node.args.defaults, *(d for d in node.args.kw_defaults if d)]
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            own = set().union(*(_stored(g.target) for g in node.generators))
            loads |= _loads(list(ast.iter_child_nodes(node))) - own
        else:
            todo += list(ast.iter_child_nodes(node))
    return loads


def _stored(target):
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _always_binds(statement):
    """Names a top-level statement binds whenever it completes."""
    if isinstance(statement, ast.Assign):
        return set().union(*(_stored(t) for t in statement.targets))
    if isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
        return _stored(statement.target) if getattr(statement, "value", None) is not None else set()
    if isinstance(statement, (ast.With, ast.AsyncWith)):
        targets = set().union(*(_stored(item.optional_vars) for item in statement.items if item.optional_vars))
        return targets | set().union(*(_always_binds(s) for s in statement.body))
    if isinstance(statement, ast.If):
        body = set().union(*(_always_binds(s) for s in statement.body))
        other = set().union(*(_always_binds(s) for s in statement.orelse))
        return body & other
    return set(_defined_by(statement))


def _defined_by(statement):
    """Names a def, class or import statement binds (empty for other statements)."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [statement.name]
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return [(alias.asname or alias.name).split(".")[0] for alias in statement.names]
    return []


def _keeps_no_state(node):
    """Whether a def or class keeps nothing between calls: no global or nonlocal, no mutable default, no class attributes."""
    for inner in ast.walk(node):
        if isinstance(inner, (ast.Global, ast.Nonlocal)):
            return False
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            defaults = [*inner.args.defaults, *(d for d in inner.args.kw_defaults if d is not None)]
            if not all(_is_constant(d) or isinstance(d, (ast.Name, ast.Attribute)) for d in defaults):
                return False
        if isinstance(inner, ast.ClassDef) and not all(isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Expr, ast.Pass))
                                                       for s in inner.body):
            return False
    return True


def cells_to_skip(cells, release_sources, checked_names):
    """The grade_ids of the code cells grading can leave out (see the module's docstring).

    `cells`: the notebook's code cells in order; `release_sources`: {grade_id: source} of the
    release's cells; `checked_names`: names the hidden checks look up in the submission.
    """
    named = [(grade_id(cell), is_test_cell(cell), names_of(cell.source)) for cell in cells]
    if any(names.dynamic for _, test, names in named if not test):   # a test cell sees only the names it mentions
        return set()
    skip = {gid for (gid, _, _), cell in zip(named, cells) if _is_instructors(cell, release_sources)}
    while True:
        left = {gid for i, (gid, _, _) in enumerate(named) if gid in skip and not why_it_runs(i, named, skip, checked_names)}
        if left == skip:
            return skip
        skip = left


def why_it_runs(i, named, skip, checked_names):
    """Why cell i must run while the cells in `skip` do not ('' if it need not).

    `named`: [(grade_id, is a test cell, CellNames)] of the notebook's code cells in order.
    """
    names = named[i][2]
    ran = [(gid, n) for j, (gid, test, n) in enumerate(named) if j < i and gid not in skip and not test]   # test cells: not here
    after = [(gid, n) for j, (gid, test, n) in enumerate(named) if j > i and gid not in skip]
    calls = _functions([n for _, _, n in named])
    read_later = {gid: _reach(n.early | n.late_unbound, calls) for gid, n in after}
    read_later.update({gid: _reach(n.late, calls) for gid, n in ran})   # their functions may be called later
    read_later[CHECKS] = _reach(frozenset(checked_names), calls)
    before = [n for _, n in ran]
    for reader, reads in read_later.items():
        if names.binds & reads:
            return f"{reader or 'a cell'} {'look up' if reader == CHECKS else 'reads'} {', '.join(sorted(names.binds & reads))}"
    imports = names.imports.union(*(n.imports for n in before))
    if names.stores_into & imports:
        return f"it changes the module {', '.join(sorted(names.stores_into & imports))}"
    changed = _changeable(names, before) & set().union(*read_later.values())
    if changed:
        return f"it can change {', '.join(sorted(changed))}, which cells that run read afterwards"
    return ""


def _functions(cells):
    """{name: [(global names it reads when called, keeps state)]} for every def and class of `cells`."""
    found = {}
    for names in cells:
        for name, reads, stateful in names.functions:
            found.setdefault(name, []).append((reads, stateful))
    return found


def _reach(reads, functions):
    """`reads`, and what the functions among them read when called, and so on."""
    found, todo = set(reads), list(reads)
    while todo:
        for inner, _ in functions.get(todo.pop(), ()):
            todo += inner - found
            found |= inner
    return found


def _changeable(names, before):
    """What the cells that ran before made and this cell could change: the data it reaches (directly or through the
    functions it calls) and the functions that keep state; not modules, not constants, not functions without state."""
    made = set().union(*(n.binds for n in before))
    imports = set().union(*(n.imports for n in before))
    constants = set().union(*(n.constants for n in before)) - set().union(*(n.binds - n.constants for n in before))
    calls = _functions(before)
    plain = set().union(*(n.binds - n.definitions for n in before))
    reached = _reach(names.early | names.late, calls) & made
    stateful = {name for name, found in calls.items() if any(keeps for _, keeps in found)}
    return {name for name in reached - imports - constants if name in plain or name in stateful or name not in calls}


def _is_instructors(cell, release_sources):
    gid = grade_id(cell)
    meta = cell.metadata.get("nbgrader", {})
    return (bool(gid) and meta.get("locked", False) and not meta.get("solution", False) and not is_test_cell(cell)
            and release_sources.get(gid) == cell.source)


def _inputs(nb, assignment, root):
    """(code cells, release sources, names the hidden checks look up) of a submission, or None without a release."""
    from .. import course
    from ..runner import exercises

    release = course.release_notebook(assignment, root)
    if not release.exists():
        return None
    sources = {grade_id(c): c.source for c in course.read_notebook(release).cells if grade_id(c)}
    checked = {name for exercise in exercises(course.hidden_tests(assignment, root)) for name in (exercise.function, *exercise.substitutes)}
    return [c for c in nb.cells if c.cell_type == "code"], sources, checked


def for_submission(nb, assignment, root):
    """The grade_ids of the cells of submission `nb` that grading leaves out (none when the release is missing)."""
    inputs = _inputs(nb, assignment, root)
    return cells_to_skip(*inputs) if inputs else set()


def explain(assignment, root):
    """[(grade_id, why grading runs it, or '' when it leaves it out)] for the instructor's code cells of the
    source notebook (`python -m mfml_grader cells <assignment>`): what happens for a correct submission."""
    from .. import course

    nb = course.read_notebook(course.source_notebook(assignment, root))
    cells, sources, checked = _inputs(nb, assignment, root) or ([], {}, set())
    skip = cells_to_skip(cells, sources, checked)
    named = [(grade_id(c), is_test_cell(c), names_of(c.source)) for c in cells]
    return [(gid, "" if gid in skip else why_it_runs(i, named, skip | {gid}, checked) or "not the release's locked cell")
            for i, (gid, test, _) in enumerate(named) if not test and cells[i].metadata.get("nbgrader", {}).get("locked")]
