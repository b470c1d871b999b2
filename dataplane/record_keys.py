"""Record keys of the cell key method: drawn once at ingest, kept apart from the dataset file.

Drawn once: ingesting the same source file again keeps them (`kept`). A session's dataset group reads the whole
dataset file, so the keys are not in it: they are in
`$ONSITE_HOME/run/record-keys/<dataset id>.keys` (run/ is the hub's account's only, 0700; the
directory 0700, the file 0600), which only the review service reads. One key per row of the
dataset's `microdata` table, in row-id order: a uint32 k standing for k / 2^32, from os.urandom.

File: a 64-byte header (magic, rows, the SHA-256 of the ingested source) then the keys. The header
binds the keys to one ingest: keys of another ingest of the dataset are refused, never used.
"""
from __future__ import annotations

import os
import struct
import uuid
from pathlib import Path

import numpy as np
from tqdm import tqdm

from onsite_base.errors import UserError

MAGIC = b"ONSITE-RECORD-KEYS-1\0\0\0\0"  # 24 bytes
HEADER = struct.Struct("<24sQ32s")  # magic, rows, raw SHA-256 of the source: 64 bytes
SUBDIR = "record-keys"
DIR_MODE = 0o700
FILE_MODE = 0o600
CHUNK_ROWS = 1 << 20


class RecordKeysInvalid(UserError):
    """Record keys missing, damaged or of another ingest of the dataset."""


def keys_dir(datasets_dir: Path) -> Path:
    """Where the record keys of the datasets in `datasets_dir` ($ONSITE_HOME/datasets) live: $ONSITE_HOME/run/record-keys."""
    return Path(datasets_dir).parent / "run" / SUBDIR


def key_file(datasets_dir: Path, dataset_id: str) -> Path:
    return keys_dir(datasets_dir) / f"{dataset_id}.keys"


def write_keys(datasets_dir: Path, dataset_id: str, rows: int, source_sha256: str, *,
               progress: bool = False) -> Path:
    """Draw `rows` keys into a temporary file beside the final one; `commit_keys` puts it in place."""
    directory = keys_dir(datasets_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(directory, DIR_MODE)
    tmp = directory / f".{dataset_id}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out, tqdm(total=rows, desc="record keys", unit=" rows", unit_scale=True,
                                               disable=not progress) as bar:
            out.write(HEADER.pack(MAGIC, rows, bytes.fromhex(source_sha256)))
            for start in range(0, rows, CHUNK_ROWS):
                n = min(CHUNK_ROWS, rows - start)
                out.write(os.urandom(4 * n))
                bar.update(n)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def commit_keys(tmp: Path, datasets_dir: Path, dataset_id: str) -> Path:
    target = key_file(datasets_dir, dataset_id)
    os.replace(tmp, target)
    return target


def kept(datasets_dir: Path, dataset_id: str, rows: int, source_sha256: str) -> bool:
    """Whether the dataset already has keys for this very source (a re-ingest of the same file keeps them: the same
    rows in the same order, so every record keeps its key and every released value stays what it was)."""
    try:
        with open(key_file(datasets_dir, dataset_id), "rb") as f:
            magic, stored_rows, digest = HEADER.unpack(f.read(HEADER.size))
    except (OSError, struct.error):
        return False
    return magic == MAGIC and stored_rows == rows and digest == bytes.fromhex(source_sha256)


def read_keys(datasets_dir: Path, dataset_id: str, rows: int, source_sha256: str) -> np.ndarray:
    """The dataset's record keys (uint32, one per row id), checked against its rows and source digest."""
    path = key_file(datasets_dir, dataset_id)
    try:
        with open(path, "rb") as f:
            header = f.read(HEADER.size)
            if len(header) != HEADER.size:
                raise RecordKeysInvalid(f"record keys of dataset {dataset_id}: {path} is damaged")
            magic, stored_rows, digest = HEADER.unpack(header)
            if magic != MAGIC or stored_rows != rows or digest != bytes.fromhex(source_sha256):
                raise RecordKeysInvalid(f"record keys of dataset {dataset_id} at {path} belong to another ingest of "
                                        "it: ingest the dataset again")
            keys = np.fromfile(f, dtype="<u4", count=rows)
    except FileNotFoundError:
        raise RecordKeysInvalid(f"dataset {dataset_id} has no record keys ({path}): ingest it again") from None
    if len(keys) != rows:
        raise RecordKeysInvalid(f"record keys of dataset {dataset_id}: {path} is truncated")
    return keys
