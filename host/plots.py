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
    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 4.2)
    ax.axis("off")
    boxes = {
        "dma_in": (0.1, 2.6, 1.5, 0.9, "AXI DMA MM2S\n64-bit stream\nprogram / images"),
        "loader": (2.0, 2.6, 1.6, 0.9, "loader\nparse · check\nrun-code decode"),
        "wstore": (4.0, 3.1, 1.7, 0.8, "sparse_weight_store\n{offset, weight}"),
        "act": (4.0, 1.6, 1.7, 1.1, f"activation memory\n{lanes} banks\n(addr mod {lanes})"),
        "seq": (2.0, 0.9, 1.6, 1.2, "layer sequencer\nchannel × tile ×\nnon-zero groups"),
        "lanes": (6.1, 2.0, 1.8, 1.6, f"{lanes} zero_skip_mac lanes\nP pixels × Q entries\nsegmented adder tree"),
        "post": (8.3, 2.0, 1.4, 1.6, "P accumulators\nrequant · ReLU\nclamp · 2×2 max-pool"),
        "dma_out": (9.9, 0.6, 1.0, 1.0, "S2MM\nresults\n+TLAST"),
        "regs": (6.1, 0.2, 3.0, 0.9, "AXI4-Lite regs: ctrl · status · error ·\nCYCLES / STALL / MACS counters · IRQ"),
    }
    for x, y, w, h, text in boxes.values():
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc="#eef4fd", ec="#2f80ed"))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)

    def arrow(a, b, text=""):
        xa, ya, wa, ha, _ = boxes[a]
        xb, yb, wb, hb, _ = boxes[b]
        p0 = (xa + wa, ya + ha / 2) if xb > xa + wa - 0.01 else (xa + wa / 2, ya)
        p1 = (xb, yb + hb / 2) if xb > xa + wa - 0.01 else (xb + wb / 2, yb + hb)
        ax.add_patch(FancyArrowPatch(p0, p1, arrowstyle="-|>", mutation_scale=12, color="#333"))
        if text:
            ax.text((p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2 + 0.08, text, fontsize=7, ha="center")

    arrow("dma_in", "loader")
    arrow("loader", "wstore", "entries")
    arrow("loader", "act", "image")
    arrow("wstore", "lanes", "Q weights")
    arrow("act", "lanes", "crossbar")
    arrow("lanes", "post")
    arrow("post", "dma_out", "int32")
    ax.add_patch(FancyArrowPatch((8.3, 2.1), (5.7, 2.0), arrowstyle="-|>", mutation_scale=12, color="#333",
                                 connectionstyle="arc3,rad=0.3"))
    ax.text(7.0, 1.55, "int8 writes (next layer)", fontsize=7, ha="center")
    ax.add_patch(FancyArrowPatch((3.6, 1.5), (4.0, 2.0), arrowstyle="-|>", mutation_scale=12, color="#333"))
    ax.add_patch(FancyArrowPatch((3.6, 1.8), (4.0, 3.3), arrowstyle="-|>", mutation_scale=12, color="#333"))
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
