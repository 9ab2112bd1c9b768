"""Forbidden APIs: an exercise that asks for softmax by hand must not call `torch.softmax`.

Two layers, because either alone can be fooled:
- `find_forbidden` reads the solution code (`ast`), resolves import aliases and reports every
  reference to a forbidden name with its line: clear messages, even for code that never runs.
- `forbid_at_runtime` refuses forbidden torch functions while student code runs, through a
  `TorchFunctionMode`, which sees every torch call however it was reached
  (`getattr(F, "soft" + "max")`, an alias captured earlier, a method on a tensor), and replaces
  forbidden modules and classes (`torch.optim`, `torch.distributions`), which that mode cannot
  see, by stand-ins that refuse to be used.

Forbidden names are dotted paths; `torch.Tensor.softmax` also means any `.softmax` method call, and
`*` is a wildcard within one name (`torch.linalg.*norm`).
"""

import ast
import contextlib
import fnmatch
import functools
import importlib
import inspect
import symtable

from torch.overrides import TorchFunctionMode


class ForbiddenAPIError(RuntimeError):
    """Raised inside student code when it calls an API the exercise forbids."""


def _dotted(node, aliases):
    """The dotted path an expression refers to (`F.softmax` -> `torch.nn.functional.softmax`), or None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    root = aliases.get(node.id)
    if root is None:
        return None
    return ".".join([root, *reversed(parts)])


def import_aliases(tree):
    """Map each name an import binds to the dotted path it stands for."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


@functools.lru_cache(maxsize=1024)
def _aliases_of(source):
    try:
        return import_aliases(ast.parse(source))
    except SyntaxError:
        return {}


def _canonical(path):
    """`torch.nn.functional` and its aliases `F`/`functional` end up as one spelling."""
    for prefix, replacement in (("torch._tensor.Tensor.", "torch.Tensor."), ("torch._C.TensorBase.", "torch.Tensor.")):
        if path.startswith(prefix):
            return replacement + path[len(prefix):]
    return path


def _is_forbidden(path, forbidden):
    return any(fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern + ".") for pattern in forbidden)


def defined_methods(trees):
    """Names of the methods that classes in these syntax trees define (the student's own `backward`)."""
    return {item.name for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
            for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}


def find_forbidden(source, forbidden, context_sources=(), own_methods=(), aliases=None):
    """Every forbidden reference in `source` (text or syntax tree), as `(line, what)` pairs.

    `context_sources` are other cells of the notebook: their imports count (an `import
    torch.nn.functional as F` in the first cell is what `F` means in the solution cell).
    `torch.Tensor.<method>` patterns also match `<anything>.<method>`, except for methods in
    `own_methods`: a method the student's own classes define is not torch's (`layer.backward(d)`).
    `aliases` (what imported names stand for) may be given instead of `context_sources`.
    """
    if not forbidden:
        return []
    tree = ast.parse(source) if isinstance(source, str) else source
    aliases = {"torch": "torch", **(aliases or {})}
    for other in context_sources:
        aliases.update(_aliases_of(other))
    aliases.update(import_aliases(tree))
    methods = {pattern.rsplit(".", 1)[1] for pattern in forbidden if pattern.startswith("torch.Tensor.")}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                path = alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
                if _is_forbidden(path, forbidden):
                    found.append((node.lineno, path))
            continue
        attribute = literal_getattr(node) or node
        if isinstance(attribute, (ast.Attribute, ast.Name)):
            path = _dotted(attribute, aliases)
            if path is not None and _is_forbidden(_canonical(path), forbidden):
                found.append((node.lineno, path))
            elif (path is None and isinstance(attribute, ast.Attribute) and attribute.attr not in own_methods
                  and any(fnmatch.fnmatchcase(attribute.attr, m) for m in methods)):
                found.append((node.lineno, f"Tensor.{attribute.attr}"))
    # an Attribute chain and its own prefix can both match: report each line and name once
    return sorted(set(found))


def literal_getattr(node):
    """`getattr(x, "name")` read as the attribute `x.name` it is (None for anything else)."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
        return ast.copy_location(ast.Attribute(value=node.args[0], attr=node.args[1].value, ctx=ast.Load()), node)
    return None


def reachable(function, trees, skip=()):
    """The syntax trees the graded `function` can run: its solution cell, and every top-level
    definition elsewhere in the student's code that it names (transitively), except `skip`
    (helpers the grader replaces by its own while this exercise is checked).

    `trees` is {label: syntax tree} of the student's cells, the solution cell labelled `function`.
    """
    definitions = {}
    for label, tree in trees.items():
        if label == function:
            continue
        for node in tree.body:
            for name in _defined_names(node):
                definitions.setdefault(name, []).append(node)
    found, todo, seen = [trees[function]], [trees[function]], {function, *skip}
    while todo:
        for name in sorted(free_names(todo.pop()) - seen):
            seen.add(name)
            for node in definitions.get(name, []):
                found.append(node)
                todo.append(node)
    return found


def free_names(node):
    """The global names a piece of code reads: not its parameters, local variables or own definitions."""
    code = ast.unparse(node)
    names, tables = set(), [symtable.symtable(code, "<code>", "exec")]
    while tables:
        table = tables.pop()
        for symbol in table.get_symbols():
            if symbol.is_referenced() and (symbol.is_global() or (table.get_type() == "module" and not symbol.is_assigned())):
                names.add(symbol.get_name())
        tables += table.get_children()
    return names


def _defined_names(node):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)]
    return []


def assigned_names(statement):
    """The global names a top-level statement binds or changes: definitions, assignment and loop targets."""
    names = _defined_names(statement)
    if isinstance(statement, (ast.For, ast.AsyncFor)):
        names += [n.id for n in ast.walk(statement.target) if isinstance(n, ast.Name)]
    if isinstance(statement, (ast.For, ast.AsyncFor, ast.While, ast.If, ast.With, ast.Try)):
        names += [n for child in ast.iter_child_nodes(statement) if isinstance(child, ast.stmt) for n in assigned_names(child)]
    return names


def _owner(path):
    """The module or class a dotted path names (`torch.nn.functional`, `torch.Tensor`), or None."""
    try:
        return importlib.import_module(path)
    except ImportError:
        parent, _, attr = path.rpartition(".")
        with contextlib.suppress(ImportError, AttributeError):
            return getattr(importlib.import_module(parent), attr)
    return None


@functools.lru_cache(maxsize=None)
def _resolve(pattern):
    """[(owner, attribute name, object, dotted name)] for what a forbidden pattern stands for."""
    module_path, _, name = pattern.rpartition(".")
    owner = _owner(module_path)
    if owner is None:
        return []
    return tuple((owner, n, getattr(owner, n), f"{module_path}.{n}") for n in dir(owner)
                 if fnmatch.fnmatchcase(n, name) and getattr(owner, n, None) is not None)


class _Refused:
    """Stands in for a forbidden module or class while student code runs."""

    def __init__(self, name, exercise):
        self._message = f"{exercise} must not use {name}: this exercise asks you to compute it yourself"

    def __getattr__(self, attr):
        raise ForbiddenAPIError(self._message)

    def __call__(self, *args, **kwargs):
        raise ForbiddenAPIError(self._message)


class _Refuse(TorchFunctionMode):
    def __init__(self, refused, exercise):
        super().__init__()
        self.refused, self.exercise = refused, exercise

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = self.refused.get(func)
        if name is not None:
            raise ForbiddenAPIError(f"{self.exercise} must not call {name}: this exercise asks you to compute it yourself")
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def forbid_at_runtime(forbidden, exercise):
    """Inside this block, using anything matched by `forbidden` raises ForbiddenAPIError."""
    functions, replaced = {}, []
    for pattern in forbidden:
        for owner, attr, obj, name in _resolve(pattern):
            if isinstance(obj, type) or inspect.ismodule(obj):
                replaced.append((owner, attr, obj, _Refused(name, exercise)))
            elif callable(obj):
                functions[obj] = name
    for owner, attr, _, stand_in in replaced:
        setattr(owner, attr, stand_in)
    try:
        # a torch function mode sees every torch call (about a third more time on small tensors): only when one is refused
        with _Refuse(functions, exercise) if functions else contextlib.nullcontext():
            yield
    finally:
        for owner, attr, original, _ in reversed(replaced):
            setattr(owner, attr, original)
