"""Figures for reports and asset metadata: made outside pyplot's global state (safe in the
threads of a Dagster run or a web server), written as PNG bytes, and shown inline in
markdown (for pages, such as Dagster's asset metadata, that render markdown but serve no
files)."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def new_figure(width: float, height: float, dpi: int = 100) -> tuple[Figure, Axes]:
    """A figure of ``width`` x ``height`` inches with one axes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi)
    return figure, figure.subplots()


def png_bytes(figure: Figure, dpi: int = 100) -> bytes:
    """``figure`` laid out tight, as PNG at ``dpi``."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown showing ``png`` inline, as a base64 ``data:`` URI."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
