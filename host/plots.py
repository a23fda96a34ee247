"""Figures written by ``zeroskip demo`` / ``sweep`` / ``bench`` (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch


def _names(layers) -> list[str]:
    return [lay.get("name") or f"L{i}" for i, lay in enumerate(layers)]


def plot_mac_ops(layers: list[dict], path: Path, title: str = "") -> Path:
    """Per-layer MACs per inference: dense vs issued by the zero-skipping engine."""
    names = _names(layers)
    dense = [lay["macs_dense"] for lay in layers]
    sparse = [lay["macs_sparse"] for lay in layers]
    fig, ax = plt.subplots(figsize=(7, 4))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], dense, 0.4, label="dense MACs", color="#9aa5b1")
    ax.bar([i + 0.2 for i in x], sparse, 0.4, label="non-zero MACs (executed)", color="#2f80ed")
    for i, (d, s) in enumerate(zip(dense, sparse)):
        if d:
            ax.text(i + 0.2, s, f"{s / d:.0%}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), names)
    ax.set_ylabel("MACs per inference")
    ax.set_title(title or "MAC operations per layer")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_latency(layers: list[dict], clock_mhz: float, path: Path, title: str = "",
                 overhead: tuple[float, float] = (0.0, 0.0)) -> Path:
    """Stacked per-layer latency (µs at the fabric clock), dense mode vs sparse mode on the
    same engine; ``overhead`` = (dense, sparse) cycles outside layers (input, output)."""
    names = _names(layers)
    fig, ax = plt.subplots(figsize=(7, 4))
    bottoms = [overhead[0] / clock_mhz, overhead[1] / clock_mhz]
    ax.bar([0, 1], bottoms, 0.5, color="#d0d5db", label="stream in/out")
    cmap = plt.get_cmap("tab10")
    for i, (nm, lay) in enumerate(zip(names, layers)):
        vals = [lay["cycles_dense"] / clock_mhz, lay["cycles_sparse"] / clock_mhz]
        ax.bar([0, 1], vals, 0.5, bottom=bottoms, color=cmap(i % 10), label=nm)
        bottoms = [b + v for b, v in zip(bottoms, vals)]
    for i, b in enumerate(bottoms):
        ax.text(i, b, f"{b:.1f} µs", ha="center", va="bottom")
    ax.set_xticks([0, 1], ["dense mode", "zero-skip"])
    ax.set_ylabel(f"latency per inference (µs at {clock_mhz:g} MHz)")
    ax.set_title(title or "Latency per inference")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_block_diagram(path: Path, lanes: int = 8) -> Path:
    """The zero-skip pipeline, drawn from docs/hardware.md."""
    fig, ax = plt.subplots(figsize=(12, 4.6))
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 4.6)
    ax.axis("off")
    # name: (x, y, width, height, text); arrows below name explicit endpoints so no line crosses a box
    boxes = {
        "dma_in": (0.1, 3.0, 1.7, 1.0, "AXI DMA MM2S\n64-bit stream\nprogram / images"),
        "loader": (2.5, 3.0, 1.8, 1.0, "loader\nparse · check\nrun-code decode"),
        "wstore": (5.1, 3.1, 2.0, 0.8, "sparse_weight_store\n{offset, weight}"),
        "seq": (2.5, 1.4, 1.8, 1.1, "layer sequencer\nchannel × tile ×\nnon-zero groups"),
        "act": (5.1, 1.4, 2.0, 1.1, f"activation memory\n{lanes} banks (addr mod {lanes})"),
        "lanes": (7.9, 1.4, 1.9, 2.5, f"{lanes} zero_skip_mac\nlanes\nP pixels × Q entries\nsegmented\nadder tree"),
        "post": (10.3, 1.4, 1.6, 2.5, "P accumulators\nrequant · ReLU\nclamp\n2×2 max-pool"),
        "regs": (0.1, 0.1, 4.2, 0.8, "AXI4-Lite regs: ctrl · status · error ·\nCYCLES / STALL / MACS counters · IRQ"),
        "dma_out": (10.3, 0.1, 1.6, 0.8, "AXI DMA S2MM\nresults + TLAST"),
    }
    for x, y, w, h, text in boxes.values():
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc="#eef4fd", ec="#2f80ed"))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)

    label_box = {"fc": "white", "ec": "none", "pad": 0.5}

    def arrow(p0, p1, text="", rad=0.0, at=None):
        ax.add_patch(FancyArrowPatch(p0, p1, arrowstyle="-|>", mutation_scale=12, color="#333", shrinkA=2,
                                     shrinkB=2, connectionstyle=f"arc3,rad={rad}"))
        if text:
            tx, ty = at if at else ((p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2 + 0.16)
            ax.text(tx, ty, text, fontsize=7, ha="center", va="center", bbox=label_box)

    arrow((1.85, 3.5), (2.45, 3.5))
    arrow((4.35, 3.55), (5.05, 3.55), "entries")
    arrow((4.35, 3.15), (5.05, 2.3), "image", at=(4.55, 2.65))
    arrow((4.35, 1.95), (5.05, 1.95), "reads")
    arrow((3.4, 2.95), (3.4, 2.55), "program", at=(3.85, 2.75))
    arrow((7.15, 3.5), (7.85, 3.5), "Q weights")
    arrow((7.15, 2.1), (7.85, 2.1), "crossbar")
    arrow((9.85, 2.65), (10.25, 2.65))
    arrow((11.1, 1.35), (11.1, 0.95), "int32", at=(11.5, 1.15))
    arrow((10.3, 1.5), (7.15, 1.55), "int8 writes (next layer)", rad=-0.25, at=(8.7, 0.95))
    ax.set_title("zeroskip engine: only non-zero weights (and active pixels) cost cycles", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_sweep(rows: list[dict], path: Path, title: str = "") -> Path:
    """Accuracy (float, int8) and cycles (sparse, dense) against sparsity."""
    sp = [r["sparsity"] for r in rows]
    fig, ax1 = plt.subplots(figsize=(7, 4))
    ax1.plot(sp, [r["accuracy_float"] for r in rows], "o-", label="accuracy float", color="#9aa5b1")
    ax1.plot(sp, [r["accuracy_int8"] for r in rows], "s-", label="accuracy int8", color="#2f80ed")
    ax1.set_xlabel("weight sparsity")
    ax1.set_ylabel("test accuracy")
    ax1.set_ylim(0, 1.02)
    ax2 = ax1.twinx()
    ax2.plot(sp, [r["cycles_sparse"] for r in rows], "^--", label="cycles zero-skip", color="#eb5757")
    ax2.plot(sp, [r["cycles_dense"] for r in rows], "v:", label="cycles dense mode", color="#f2994a")
    ax2.set_ylabel("cycles per inference")
    ax2.set_ylim(0, max(r["cycles_dense"] for r in rows) * 1.1)
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, loc="lower left", fontsize=8)
    ax1.set_title(title or "Accuracy and cycles against sparsity")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
