"""The evaluation report (HTML with an inline PNG, or the PNG alone) and the progress lines."""

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from training.progress import Progress
from training.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_report(k: int = 10) -> dict:
    def row(ndcg: float, precision: float) -> dict:
        metrics = {f"ndcg_at_{k}": ndcg, f"precision_at_{k}": precision,
                   f"recall_at_{k}": 0.1, f"map_at_{k}": 0.2, f"hit_rate_at_{k}": 0.9,
                   "catalog_coverage": 0.3, "popularity_bias": 0.5}
        return {"metrics": metrics, "std": {key: 0.0123 for key in metrics},
                "fit_seconds": 1.5, "predict_seconds": 0.25}

    return {
        "dataset": {"path": "ml-100k", "events": 100000, "users": 943, "items": 1682},
        "protocol": {"name": "temporal", "k": k, "seeds": [42, 43, 44], "test_fraction": 0.25,
                     "ranking": "full catalog, items seen in training removed"},
        "models": {"popularity": row(0.1389, 0.1291), "als": row(0.2241, 0.2017),
                   "pipeline": row(0.2983, 0.2671)},
        "wall_seconds": 120.0,
    }


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        assert tag not in ("script", "link"), "no external or scripted assets"

    def handle_data(self, data):
        self.text.append(data)


def test_html_report_holds_the_table_and_an_inline_png(tmp_path: Path) -> None:
    path = write_report(fake_report(), tmp_path / "out" / "report.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    parser = Collector()
    parser.feed(page)
    parser.close()
    text = " ".join(parser.text)
    for name in ("popularity", "als", "pipeline"):
        assert name in text
    for figure in ("0.2983 ± 0.0123", "0.2671 ± 0.0123", "0.1389 ± 0.0123", "0.2241 ± 0.0123"):
        assert figure in text
    assert "NDCG@10" in text and "precision@10" in text
    assert '<img src="data:image/png;base64,' in page
    assert len(parser.images) == 1 and parser.images[0].startswith("data:image/png;base64,")
    png = base64.b64decode(parser.images[0].split(",", 1)[1], validate=True)
    assert png.startswith(PNG_MAGIC) and len(png) > 5000
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # self-contained


def test_png_report_is_the_plot(tmp_path: Path) -> None:
    path = write_report(fake_report(k=5), tmp_path / "plot.png")
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    from matplotlib.image import imread

    image = imread(io.BytesIO(data), format="png")
    assert image.shape[0] == 400 and image.shape[1] == 700
    assert image[..., :3].std() > 0.05  # something was drawn


def test_report_refuses_other_suffixes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=".html or .png"):
        write_report(fake_report(), tmp_path / "report.pdf")


def test_progress_prints_a_line_per_step_when_not_a_tty() -> None:
    stream = io.StringIO()  # isatty() is False
    with Progress(3, "evaluate", stream=stream) as progress:
        for label in ("split", "fit", "score"):
            progress.step(label)
            progress.done()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4
    assert "evaluate [1/3] split" in lines[0] and "evaluate [3/3] score" in lines[2]
    assert "finished 3/3 steps" in lines[3]


def test_progress_draws_a_bar_on_a_tty() -> None:
    stream = io.StringIO()
    with Progress(2, "evaluate", stream=stream, tty=True) as progress:
        progress.step("fit")
        progress.done()
        progress.done()
    out = stream.getvalue()
    assert "evaluate" in out and "2/2" in out and "[1/2]" not in out
