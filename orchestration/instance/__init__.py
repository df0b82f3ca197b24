"""The Dagster instance of the platform: ``DAGSTER_HOME`` with its ``dagster.yaml``.

The checked-in template beside this file is copied into ``DAGSTER_HOME`` (default
``<data_dir>/dagster``) when it holds no ``dagster.yaml`` yet: ``dagster.yaml`` keeps runs in
local SQLite, ``dagster-postgres.yaml`` (chosen when ``RECSYS_DAGSTER_POSTGRES_URL`` is set)
in PostgreSQL. An existing ``dagster.yaml`` is left as its owner wrote it.
"""

import os
import shutil
from pathlib import Path

from orchestration.instance.event_storage import batch_asset_events
from recsys.platform.settings import get_settings

TEMPLATES = Path(__file__).parent
POSTGRES_URL = "RECSYS_DAGSTER_POSTGRES_URL"


def dagster_home() -> Path:
    """``DAGSTER_HOME`` (set to ``<data_dir>/dagster`` if unset), with its dagster.yaml; asset
    events of long backfills batched (:func:`~orchestration.instance.event_storage.
    batch_asset_events`)."""
    batch_asset_events()
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(get_settings().data_dir / "dagster")))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        template = "dagster-postgres.yaml" if os.environ.get(POSTGRES_URL) else "dagster.yaml"
        shutil.copyfile(TEMPLATES / template, config)
    return home
