"""A block of sandbox uids that belongs to one grading process alone, on the whole host.

Each submission runs under its own uid, and its processes are limited (RLIMIT_NPROC counts per uid)
and finally swept by uid. Two grading runs on one host (two courses, a re-run beside a batch, the
JOBS processes of one batch) must therefore never share a uid: each grading process holds an
exclusive `flock` on one block's lock file for as long as it lives, and uses only that block's
uids. The kernel drops the lock when the process dies, so a crashed run frees its block.
"""

import fcntl
import os
from dataclasses import dataclass

FIRST_UID = 1_900_000_000      # far above any account's uid
BLOCK_SIZE = 64                # uids one grading process cycles through
BLOCKS = 1024
LAST_UID = FIRST_UID + BLOCK_SIZE * BLOCKS
LOCK_DIR = "/run/mfml-grader/uid-blocks"


class NoFreeBlock(RuntimeError):
    """Every uid block is held by another grading process."""


@dataclass
class UidBlock:
    first: int
    lock_fd: int
    next_index: int = 0

    def next_uid(self):
        """The block's next uid, in turn (a submission never reuses the uid of the one before)."""
        uid = self.first + self.next_index
        self.next_index = (self.next_index + 1) % BLOCK_SIZE
        return uid

    def close(self):
        os.close(self.lock_fd)


def acquire(lock_dir=LOCK_DIR):
    """Lock the first free block (only root can switch uids, so only root needs one)."""
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    for block in range(BLOCKS):
        path = os.path.join(lock_dir, f"{block}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return UidBlock(FIRST_UID + block * BLOCK_SIZE, fd)
    raise NoFreeBlock(f"all {BLOCKS} uid blocks in {lock_dir} are held by running grading processes")


def owns_sandbox_uid(uid):
    """True for a uid of some grading process's block (whichever run it belongs to)."""
    return FIRST_UID <= uid < LAST_UID
