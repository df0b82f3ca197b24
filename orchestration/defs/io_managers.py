"""The IO manager of the assets that hand values to each other: the library's own files.

Frames are Parquet, models are written by their own ``save`` (npz, LightGBM text, JSON), and
the dataclasses between them field by field (:mod:`recsys.platform.artifacts`), under
``<base_dir>/<asset key>``; nothing is pickled, so an artifact outlives the code that wrote it.
"""

from pathlib import Path

import dagster as dg

from recsys.platform.artifacts import load_artifact, save_artifact


class ArtifactIOManager(dg.ConfigurableIOManager):
    """Stores each asset's value in a folder named by its key (the latest one is kept)."""

    base_dir: str

    def _path(self, context: dg.OutputContext | dg.InputContext) -> Path:
        parts = context.asset_key.path if context.has_asset_key else context.get_identifier()
        return Path(self.base_dir, *parts)

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        path = self._path(context)
        save_artifact(obj, path)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> object:
        return load_artifact(self._path(context))
