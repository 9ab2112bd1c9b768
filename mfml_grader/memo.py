"""Per-process memory of pure functions of a cell's source: the instructor's cells repeat in every submission."""

import functools

CACHED_CHARS = 20_000   # longer than any instructor cell; a submission's long cells are computed, not kept


def per_source(function):
    """`function(source)`, remembered for the last 1024 sources of at most CACHED_CHARS characters."""
    cached = functools.lru_cache(maxsize=1024)(function)

    @functools.wraps(function)
    def remembered(source):
        return cached(source) if len(source) <= CACHED_CHARS else function(source)

    return remembered
