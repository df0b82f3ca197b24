"""Values passed between pipeline steps, saved as plain files (no pickle).

An artifact is a folder with ``artifact.json`` describing the value and the files it refers
to: a pandas frame is a Parquet file, a model of the library (any object with ``save(path)``
and a ``load(path)`` class method: :class:`~recsys.models.recommender.Recommender`,
:class:`~recsys.models.union.UnionCandidates`, :class:`~recsys.models.ranker.Ranker`) a folder
written by its own ``save``, a dataclass its fields one by one, and plain values (numbers,
strings, lists, dicts, timestamps) JSON. Only classes of this project's packages are
re-created on load, so an artifact folder cannot name arbitrary code to run.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MANIFEST = "artifact.json"
#: Packages whose classes an artifact may name.
_TRUSTED = ("recsys.", "training.")


def save_artifact(value: object, path: Path) -> None:
    """Write ``value`` into folder ``path``, replacing what was there only once it is whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        spec = _encode(value, staging, "value")
        (staging / MANIFEST).write_text(json.dumps(spec, indent=1))
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def load_artifact(path: Path) -> Any:
    """Read what :func:`save_artifact` wrote."""
    path = Path(path)
    return _decode(json.loads((path / MANIFEST).read_text()), path)


def _class_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _class(name: str) -> type:
    module, _, qualname = name.partition(":")
    if not module.startswith(_TRUSTED):
        raise TypeError(f"artifact names {name!r}, outside the project's packages")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _persistable(value: object) -> bool:
    return callable(getattr(value, "save", None)) and callable(getattr(type(value), "load", None))


def _encode(value: object, root: Path, name: str) -> dict[str, Any]:
    if value is None or isinstance(value, bool | int | float | str):
        return {"json": value}
    if isinstance(value, np.generic):
        return {"json": value.item()}
    if isinstance(value, pd.DataFrame):
        value.to_parquet(root / f"{name}.parquet", index=False)
        return {"frame": f"{name}.parquet"}
    if isinstance(value, pd.Timestamp):
        return {"timestamp": value.isoformat()}
    if _persistable(value):
        value.save(root / name)  # type: ignore[attr-defined]
        return {"saved": _class_name(type(value)), "path": name}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _encode(getattr(value, f.name), root, f"{name}.{f.name}")
                  for f in dataclasses.fields(value) if f.init}
        return {"dataclass": _class_name(type(value)), "fields": fields}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _encode(v, root, f"{name}.{k}") for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"list": [_encode(v, root, f"{name}.{i}") for i, v in enumerate(value)]}
    raise TypeError(f"cannot save a {type(value).__name__} as an artifact ({name})")


def _decode(spec: dict[str, Any], root: Path) -> Any:
    kind = next(iter(spec))
    if kind == "json":
        return spec["json"]
    if kind == "frame":
        return pd.read_parquet(root / spec["frame"])
    if kind == "timestamp":
        return pd.Timestamp(spec["timestamp"])
    if kind == "saved":
        return _class(spec["saved"]).load(root / spec["path"])  # type: ignore[attr-defined]
    if kind == "dataclass":
        fields = {k: _decode(v, root) for k, v in spec["fields"].items()}
        return _class(spec["dataclass"])(**fields)
    if kind == "dict":
        return {k: _decode(v, root) for k, v in spec["dict"].items()}
    if kind == "list":
        return [_decode(v, root) for v in spec["list"]]
    raise ValueError(f"unknown artifact entry {kind!r}")
