"""One precompute run per split cache at a time: an exclusive ``flock`` on a lock file.

The lock file is ``<root>/.<split>.lock``, beside the split directory rather than inside it
(``--overwrite`` deletes that directory, and a lock on a deleted file locks nothing). Why
``flock`` and not a pid file: the kernel releases the lock when the holding process ends in
any way, ``kill -9`` included, so a killed run never leaves a lock that blocks the next one
and nothing has to guess whether a recorded pid is still alive (pids are reused, and hosts
differ on a shared file system). The file's content (pid, host, start time, command) only
names the holder in the refusal message; it stays after the run and is overwritten by the
next holder. The descriptor is not inherited by the dask workers (spawned processes), so a
worker outliving a killed coordinator does not hold the lock either (it can only finish its
shard with the same bytes a resumed run writes). On NFS, Linux maps ``flock`` to POSIX locks,
which need a lock manager (NFSv4, or lockd for v3); without one the lock fails with a clear
error instead of being skipped.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path


class CacheLockedError(RuntimeError):
    """Another precompute run holds the lock of this split cache."""


class CacheLock:
    """``with CacheLock(root, split):`` holds the split's lock or raises ``CacheLockedError``
    (``OSError`` if the lock file cannot be created: read-only root, no lock manager)."""

    def __init__(self, root: str | Path, split: str) -> None:
        self.path = Path(root) / f'.{split}.lock'
        self.split = split
        self._fd: int | None = None

    def __enter__(self) -> 'CacheLock':
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors='replace').strip()
            os.close(fd)
            raise CacheLockedError(
                f'the {self.split!r} cache under {self.path.parent} is being written by another '
                f'precompute run ({_describe(holder)}); nothing was changed. Wait for it to end '
                f'or stop it (lock file {self.path}; a killed run holds no lock)') from None
        except BaseException:
            os.close(fd)
            raise
        info = json.dumps(dict(pid=os.getpid(), host=socket.gethostname(),
                               started=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
                               command=' '.join(sys.argv)))
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode() + b'\n', 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None


def _describe(holder: str) -> str:
    try:
        info = json.loads(holder)
        return (f'pid {info["pid"]} on host {info["host"]}, started {info["started"]}: '
                f'{info["command"]}')
    except (ValueError, KeyError, TypeError):
        return 'holder unknown'
