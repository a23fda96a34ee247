"""The demo's plots render, and the block diagram's labels do not overlap each other."""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("matplotlib")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from zeroskip.host import plots


@pytest.mark.parametrize("lanes", [4, 8, 16, 32])
def test_block_diagram_labels_do_not_overlap(tmp_path, monkeypatch, lanes):
    figs = []
    real_close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: figs.append(fig))
    path = plots.plot_block_diagram(tmp_path / "bd.png", lanes=lanes)
    monkeypatch.setattr(plt, "close", real_close)
    assert path.stat().st_size > 10_000
    fig = figs[0]
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    texts = [t for t in ax.texts if t.get_text().strip()]
    assert len(texts) >= 15
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    for (na, a), (nb, b) in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), f"labels {na!r} and {nb!r} overlap"
    patches = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, FancyBboxPatch)]
    assert len(patches) >= 8
    for name, b in boxes:
        inside = [p for p in patches if p.contains(b.x0, b.y0) and p.contains(b.x1, b.y1)]
        if inside:  # a box's own text
            continue
        hit = [p for p in patches if p.overlaps(b)]
        assert not hit, f"label {name!r} overlaps a box"
    fig_box = fig.bbox
    for name, b in boxes:
        assert fig_box.contains(b.x0, b.y0) and fig_box.contains(b.x1, b.y1), f"label {name!r} leaves the figure"
    real_close(fig)
