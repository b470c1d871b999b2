"""What a researcher's notebook imports.

    import analysis_kernel
    db = analysis_kernel.connect()          # the datasets this session's project grants
    db.sql("SELECT ... FROM <dataset id>").pl()

Names are imported on first use (PEP 562 `__getattr__`): `import analysis_kernel`
loads neither DuckDB nor polars (heavy: hundreds of milliseconds and tens of MB),
only the name a notebook first touches does.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analysis_kernel.connection import AnalysisConnection, connect
    from analysis_kernel.ingress import request_ingress
    from analysis_kernel.release import request_release

# public name -> module that defines it (None: the name is a submodule)
_EXPORTS: dict[str, str | None] = {
    "connect": "analysis_kernel.connection",
    "AnalysisConnection": "analysis_kernel.connection",
    "request_release": "analysis_kernel.release",
    "request_ingress": "analysis_kernel.ingress",
    "outputs": None,
}

__all__ = ["AnalysisConnection", "connect", "outputs", "request_ingress", "request_release"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'analysis_kernel' has no attribute {name!r}")
    module_name = _EXPORTS[name]
    if module_name is None:
        return importlib.import_module(f"analysis_kernel.{name}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value
