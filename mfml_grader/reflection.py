"""Private and reflective access, refused in every graded exercise, over all of a student's code.

The course's exercises ask for tensor arithmetic. They never need torch's private parts, the
interpreter's machinery or the grading engine, and those are exactly what reaches a forbidden
operation by another name (`torch._C._nn`, `torch.ops.aten`, `sys.modules`, `__import__`), switches
the run-time guard off (torch's function modes, `gc`, frames) or leaves the sandbox's rules
(`ctypes`). This check reads every cell the student wrote, in the trusted grading process, so no
code in the sandbox can turn it off; the run-time guard in the sandbox is a second line.

What counts (each use is reported with its cell and line):
- a reference or import of a refused module or name (`REFUSED`), or of anything private under
  torch (a path component starting with `_`), or of the grading engine (`mfml_grader`);
- a call of `__import__`, `exec`, `eval`, `compile`, `globals`, `locals`, `vars` or `breakpoint`;
- `getattr`, `setattr`, `delattr` or `hasattr` with a name that is not a string literal (except on `self`);
- an attribute that reaches the interpreter's internals (`__dict__`, `__globals__`,
  `__subclasses__`, frames, code objects) or torch's dispatch hooks (`__torch_function__`).
"""

import ast
import fnmatch

from .forbidden import _dotted, import_aliases

REFUSED = (
    "torch.ops", "torch.overrides", "torch.library", "torch.jit", "torch.compile", "torch.fx", "torch.export",
    "torch.utils.cpp_extension", "torch.utils._*", "torch.autograd.graph", "torch.autograd.function.once_differentiable",
    "sys.modules", "sys._getframe", "sys.settrace", "sys.setprofile", "sys.meta_path", "sys.path_hooks",
    "importlib", "builtins", "gc", "ctypes", "inspect", "types.FunctionType", "types.CodeType", "mfml_grader",
)
REFUSED_CALLS = ("__import__", "exec", "eval", "compile", "globals", "locals", "vars", "breakpoint")
DYNAMIC_ATTRIBUTE_CALLS = ("getattr", "setattr", "delattr", "hasattr")
REFUSED_ATTRIBUTES = (
    "__dict__", "__globals__", "__builtins__", "__subclasses__", "__code__", "__closure__", "__getattribute__",
    "__import__", "__loader__", "__spec__", "__self__", "__func__", "__wrapped__", "__mro__", "__bases__", "__base__",
    "__reduce__", "__reduce_ex__", "__traceback__", "__torch_function__", "__torch_dispatch__", "__defaults__",
    "__kwdefaults__", "tb_frame", "tb_next", "f_globals", "f_locals", "f_back", "f_builtins", "f_code", "gi_frame",
    "cr_frame", "ag_frame", "gi_code", "co_code", "_execution_engine",
)


def _refused_path(path):
    if any(path == p or path.startswith(p + ".") or fnmatch.fnmatchcase(path, p) for p in REFUSED):
        return True
    parts = path.split(".")
    return parts[0] == "torch" and any(p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in parts[1:])


def find_reflection(tree, aliases):
    """[(line, what)] of every private or reflective access in one cell's syntax tree."""
    aliases = {**aliases, **import_aliases(tree)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom) and node.level:
                continue
            for alias in node.names:
                path = alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
                if _refused_path(path) or _refused_path(path.rsplit(".", 1)[0] if isinstance(node, ast.ImportFrom) else path):
                    found.append((node.lineno, f"import {path}"))
        elif isinstance(node, ast.Attribute):
            path = _dotted(node, aliases)
            if path is not None and _refused_path(path):
                found.append((node.lineno, path))
            elif node.attr in REFUSED_ATTRIBUTES:
                found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.Name):
            path = aliases.get(node.id)
            if path is not None and _refused_path(path):
                found.append((node.lineno, path))
            elif node.id in REFUSED_CALLS:
                found.append((node.lineno, node.id))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in ("__torch_function__", "__torch_dispatch__"):
            found.append((node.lineno, f"def {node.name}"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in DYNAMIC_ATTRIBUTE_CALLS:
            target, name = (node.args + [None, None])[:2]
            literal = isinstance(name, ast.Constant) and isinstance(name.value, str)
            if not literal and not (isinstance(target, ast.Name) and target.id == "self"):
                found.append((node.lineno, f"{node.func.id} with a computed name"))
            elif literal and name.value in REFUSED_ATTRIBUTES:
                found.append((node.lineno, f"{node.func.id}(..., {name.value!r})"))
    return sorted(set(found))


def describe(uses):
    """One sentence for the student: what was found where, and why it costs every exercise."""
    listed = "; ".join(f"{where}, line {line}: {what}" for where, line, what in uses[:5])
    more = f" (and {len(uses) - 5} more)" if len(uses) > 5 else ""
    return (f"the notebook uses private or reflective access to torch or the interpreter ({listed}{more}). The exercises never "
            "need it, and it can hide a forbidden operation, so every exercise is refused: remove it and compute with "
            "ordinary tensor operations.")
