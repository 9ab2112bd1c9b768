"""`swapped`: one attribute of a module (or object) replaced while a block runs, then put back.

How this grader adapts an nbgrader step without copying its code: the step runs unchanged while
a name it looks up (`jsonschema` in its validator, `Gradebook` in its module) stands for ours.
"""

import contextlib


@contextlib.contextmanager
def swapped(owner, name, value):
    """Inside this block `owner.name` is `value`; afterwards it is what it was, even after an error."""
    saved = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)
