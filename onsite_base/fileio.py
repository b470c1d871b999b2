"""Files that readers in other processes pick up (outbox requests, manifests)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any, *, mode: int | None = None) -> Path:
    """Write `data` as JSON so that a reader never sees half a file: a temporary
    file beside `path`, then a rename. `mode` sets the file's permissions."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, ensure_ascii=False, default=str), encoding="utf-8")
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
