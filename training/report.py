"""A report a person can look at: the evaluation CLI's ``--report PATH``.

``PATH`` ending in ``.png`` gets the plot alone; ``.html`` gets one self-contained page (the
metrics table per model, mean ± std over seeds, and the plot inline as a base64 PNG, no
external assets). The plot draws NDCG@k and precision@k per model with the seeds' standard
deviation as error bars.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from recsys.evaluation.plots import new_figure, png_bytes

#: Columns of the HTML table: (metric key template, header).
COLUMNS = (
    ("ndcg_at_{k}", "NDCG@{k}"), ("precision_at_{k}", "precision@{k}"),
    ("recall_at_{k}", "recall@{k}"), ("map_at_{k}", "MAP@{k}"),
    ("hit_rate_at_{k}", "hit rate@{k}"), ("catalog_coverage", "coverage"),
    ("popularity_bias", "popularity bias"),
)
SUFFIXES = (".html", ".png")


def plot_png(report: dict[str, Any]) -> bytes:
    """Grouped bars of NDCG@k and precision@k per model, ± std over seeds, as PNG bytes."""
    k = report["protocol"]["k"]
    models = list(report["models"])
    metrics = ((f"ndcg_at_{k}", f"NDCG@{k}"), (f"precision_at_{k}", f"precision@{k}"))
    figure, axes = new_figure(7, 4)
    width = 0.8 / len(metrics)
    for index, (key, label) in enumerate(metrics):
        means = [report["models"][m]["metrics"].get(key, 0.0) for m in models]
        stds = [report["models"][m]["std"].get(key, 0.0) for m in models]
        positions = [i + (index - (len(metrics) - 1) / 2) * width for i in range(len(models))]
        bars = axes.bar(positions, means, width, yerr=stds, capsize=4, label=label)
        axes.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    axes.set_xticks(range(len(models)), models)
    axes.set_ylabel("mean over seeds")
    axes.set_ylim(0, max(1e-6, max(
        report["models"][m]["metrics"].get(key, 0.0) + report["models"][m]["std"].get(key, 0.0)
        for m in models for key, _ in metrics)) * 1.2)
    seeds = len(report["protocol"].get("seeds", []))
    axes.set_title(f"{report['protocol']['name']} protocol, k={k}, {seeds} seed(s)")
    axes.legend()
    return png_bytes(figure)


def _cell(row: dict[str, Any], key: str) -> str:
    if key not in row["metrics"]:
        return "–"
    return f"{row['metrics'][key]:.4f} ± {row['std'].get(key, 0.0):.4f}"


def render_html(report: dict[str, Any], png: bytes | None = None) -> str:
    """One self-contained HTML page: dataset, protocol, metrics table and the inline plot."""
    k = report["protocol"]["k"]
    esc = html.escape
    headers = "".join(f"<th>{esc(h.format(k=k))}</th>" for _, h in COLUMNS)
    rows = []
    for name, row in report["models"].items():
        cells = "".join(f"<td>{_cell(row, key.format(k=k))}</td>" for key, _ in COLUMNS)
        rows.append(f"<tr><th>{esc(name)}</th>{cells}<td>{row['fit_seconds']:.1f}</td>"
                    f"<td>{row['predict_seconds']:.1f}</td></tr>")
    image = base64.b64encode(png if png is not None else plot_png(report)).decode("ascii")
    data, protocol = report.get("dataset", {}), report["protocol"]
    facts = [
        ("dataset", data.get("path", "?")), ("events", data.get("events", "?")),
        ("users", data.get("users", "?")), ("items", data.get("items", "?")),
        ("protocol", protocol["name"]), ("k", k), ("seeds", protocol.get("seeds", [])),
        ("ranking", protocol.get("ranking", "")), ("wall seconds", report.get("wall_seconds", "")),
    ]
    facts_html = "".join(f"<tr><th>{esc(str(a))}</th><td>{esc(str(b))}</td></tr>"
                         for a, b in facts)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Offline evaluation: {esc(protocol['name'])}, k={k}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th {{ background: #f4f4f4; }}
</style>
</head>
<body>
<h1>Offline evaluation</h1>
<table class="facts">{facts_html}</table>
<h2>Metrics per model (mean ± std over seeds)</h2>
<table class="metrics">
<tr><th>model</th>{headers}<th>fit s</th><th>predict s</th></tr>
{chr(10).join(rows)}
</table>
<h2>NDCG@{k} and precision@{k} per model</h2>
<img src="data:image/png;base64,{image}" alt="NDCG@{k} and precision@{k} per model">
</body>
</html>
"""


def write_report(report: dict[str, Any], path: Path) -> Path:
    """Write ``report`` to ``path`` as HTML or PNG, chosen by the suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"report path must end in .html or .png, not {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    png = plot_png(report)
    if suffix == ".png":
        path.write_bytes(png)
    else:
        path.write_text(render_html(report, png), encoding="utf-8")
    return path
