"""Files that readers in other processes pick up (outbox requests, manifests)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes, *, mode: int | None = None) -> Path:
    """Write `data` so that a reader never sees half a file: a temporary file beside
    `path` (0600 until `mode` is set: a key is never readable on the way), synced, then
    a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def write_json_atomic(path: Path, data: Any, *, mode: int | None = None) -> Path:
    return write_atomic(path, json.dumps(data, ensure_ascii=False, default=str).encode("utf-8"), mode=mode)
