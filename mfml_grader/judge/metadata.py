"""`CheckCellMetadata`: nbgrader's check of the cells' nbgrader metadata, with its schema compiled once.

nbgrader validates every cell against its JSON schema with `jsonschema.validate`, which checks the
schema itself and builds a validator each time: about 2 ms per cell, a tenth of a second per
notebook. Here the same checks run with one validator per grading process (the schema is
nbgrader's own file, checked once), and metadata found valid is remembered (as JSON text: the
instructor's cells carry the same metadata in every submission), so a notebook passes or fails
exactly as with nbgrader's step.
"""

import functools
import json

import jsonschema
from nbgrader.nbgraderformat import common
from nbgrader.preprocessors import CheckCellMetadata as NbgraderCheckCellMetadata

from .swap import swapped


class CheckCellMetadata(NbgraderCheckCellMetadata):
    """nbgrader's CheckCellMetadata (the same checks and errors), validating with a compiled schema."""

    def preprocess(self, nb, resources):
        with swapped(common, "jsonschema", _CompiledJsonschema()):
            return super().preprocess(nb, resources)


class _CompiledJsonschema:
    """Stands in for the `jsonschema` module inside nbgrader's validator: `validate` with a cached validator."""

    def __getattr__(self, name):
        return getattr(jsonschema, name)

    @staticmethod
    def validate(instance, schema):
        schema_text = json.dumps(schema, sort_keys=True)
        try:
            key = (schema_text, json.dumps(instance, sort_keys=True))
        except (TypeError, ValueError):   # not JSON data: checked every time
            key = None
        if key in _VALID:
            return
        error = jsonschema.exceptions.best_match(_validator(schema_text).iter_errors(instance))
        if error is not None:
            raise error
        if key is not None and len(_VALID) < 4096:
            _VALID.add(key)


# The metadata found valid, as JSON text: the instructor's cells carry the same metadata in every submission
# (OverwriteCells restores it from the gradebook), so each is checked once per grading process.
_VALID = set()


@functools.lru_cache(maxsize=8)
def _validator(schema_text):
    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)

