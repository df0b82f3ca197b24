"""The frames one import produces."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass
class Dataset:
    """Frames loaded from one source; ``quarantined`` holds source rows plus ``reason``."""

    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    quarantined: pd.DataFrame

