"""What one submission may use: the one place the grading limits and their defaults are defined.

`SandboxedExecute`'s settings (nbgrader_config.py) default to these; `Judge` enforces them.
"""

from dataclasses import dataclass, field

DEFAULT_LIMITS = {
    "RLIMIT_AS": 6 * 2**30,        # bytes of address space per process (torch maps a lot it never touches)
    "RLIMIT_NPROC": 64,            # processes and threads of the submission's uid
    "RLIMIT_FSIZE": 64 * 2**20,    # bytes per file written
    "RLIMIT_NOFILE": 256,
    "RLIMIT_CORE": 0,
    "RLIMIT_CPU": 900,             # CPU seconds: a backstop; wall-clock deadlines come first
}


IMAGE_CHARS = 400_000             # base64 characters of one image (a figure): a PNG of up to about 300 KB
IMAGES_PER_CELL = 8
NOTEBOOK_IMAGE_CHARS = 6_000_000  # of all images of a notebook: 15 of the largest, about 4.5 MB


@dataclass
class Limits:
    cell_seconds: float = 60.0
    notebook_seconds: float = 600.0
    output_chars: int = 100_000             # characters of output kept per cell, errors included (images: the caps above)
    notebook_output_chars: int = 2_000_000  # ... and per notebook
    cell_source_chars: int = 200_000        # a longer cell is dropped with a note
    scratch_bytes: int = 256 * 2**20
    rlimits: dict = field(default_factory=lambda: dict(DEFAULT_LIMITS))
