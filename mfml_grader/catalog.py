"""Student-style submissions that test the grader: known mistakes (mutants) and correct variants.

Each assignment has `grader_tests/catalog/<assignment>.py` with
- `MUTANTS`: wrong implementations, each naming the Mistake its diagnosis must report;
- `VARIANTS`: correct implementations written differently, which must get full marks;
- `FORBIDDEN`: implementations that use an API the exercise refuses;
- `REFLECTIVE`: implementations that reach torch or the interpreter by private or reflective access,
  which refuses every exercise of the notebook (each is graded in a notebook of its own).
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mutant:
    function: str
    mistake: str       # the name of the Mistake the feedback must report
    code: str          # the solution cell as a student would write it


@dataclass(frozen=True)
class Variant:
    function: str
    description: str
    code: str


@dataclass(frozen=True)
class Forbidden:
    function: str
    api: str           # the forbidden API the feedback must name
    code: str


@dataclass(frozen=True)
class Reflective:
    function: str
    what: str          # what the feedback must name (e.g. "sys.modules", "getattr with a computed name")
    code: str


def load(assignment, root):
    path = Path(root) / "grader_tests" / "catalog" / f"{assignment}.py"
    spec = importlib.util.spec_from_file_location(f"catalog_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batches(entries, apart=None):
    """Group entries so no batch has two for the same function: one notebook per batch.

    Exercises are graded independently, so one notebook can carry a mutant for every function;
    the functions without an entry in a batch keep the reference solution. `apart` maps a function
    to the functions it must not share a notebook with (those whose visible tests reach it, and
    the other way round), so that a failing visible test points at one entry.
    """
    apart = apart or {}
    rounds = []
    for entry in entries:
        for batch in rounds:
            if entry.function not in batch and not apart.get(entry.function, set()) & set(batch):
                batch[entry.function] = entry
                break
        else:
            rounds.append({entry.function: entry})
    return rounds
