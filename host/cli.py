"""``zeroskip`` command line.

Commands that train (``demo``, ``train``, ``export``, ``sweep``, ``bench``) need the
``host`` extra (torch); ``run BUNDLE`` needs only numpy (+ pynq on the board), so torch is
imported lazily, inside the commands that use it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DEFAULT_OUT = "outputs"


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _log(args, *msg) -> None:
    if not getattr(args, "quiet", False):
        print(*msg, flush=True)


def _count(minimum: int):
    """argparse type: an integer >= ``minimum`` (a one-line usage error otherwise)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        return v
    parse.__name__ = f"integer >= {minimum}"
    return parse


def _out_dir(args) -> Path:
    """``--out`` as a folder: created if missing; a file of that name is a one-line error."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out}: is a file, not a folder")
    return out


def _hw(args):
    from zeroskip.driver.program import HwConfig

    return HwConfig(lanes=args.lanes)


def _train_cfg(args):
    from zeroskip.host.pipeline import TrainConfig

    if not 0.0 <= args.sparsity < 1.0:
        raise CliError(f"--sparsity must be in [0, 1), got {args.sparsity}")
    model = getattr(args, "model", "tiny")
    dataset = args.dataset
    if model == "sparsepixels" and dataset is None:
        dataset = "detector"
    if model == "sparsepixels" and dataset != "detector":
        raise CliError("--model sparsepixels runs on --dataset detector (63x63 sparse detector images)")
    if model == "tiny" and dataset == "detector":
        raise CliError("the detector set is for --model sparsepixels")
    args.dataset = dataset or "synthetic"
    return TrainConfig(dataset=args.dataset, sparsity=args.sparsity, seed=args.seed, epochs=args.epochs,
                       finetune_epochs=args.finetune_epochs, model=model, n_max=getattr(args, "n_max", 20))


def _trained(args):
    from zeroskip.host.pipeline import get_trained

    t = time.perf_counter()
    tr = get_trained(_train_cfg(args), quiet=args.quiet, use_cache=not args.no_cache)
    _log(args, f"model: {args.model} on {args.dataset}, sparsity {tr.sparsity:.3f} (target {args.sparsity:.2f}), "
               f"accuracy float {tr.accuracy_float:.4f}, int8 {tr.accuracy_int8:.4f}"
               f"{' (cached)' if tr.cached else ''} [{time.perf_counter() - t:.1f} s]")
    return tr


def _export(args, tr, out: Path) -> Path:
    from zeroskip.host.compiler.export import export_bundle

    n = tr.x_test_int8.shape[0] if args.n_samples is None else min(args.n_samples, tr.x_test_int8.shape[0])
    info = {"dataset": args.dataset, "sparsity": round(float(tr.sparsity), 6), "target_sparsity": args.sparsity,
            "accuracy_float": tr.accuracy_float, "accuracy_int8": tr.accuracy_int8, "seed": args.seed,
            "layer_sparsity": tr.layer_sparsity}
    info["model"] = args.model
    path = export_bundle(out / "bundle", tr.qmodel, _hw(args), tr.x_test_int8[:n], tr.expected[:n],
                         labels=tr.y_test[:n], info=info, input_mode=args.input_mode)
    _log(args, f"bundle: {path}")
    return path


def _print_summary(args, s: dict) -> None:
    if args.quiet:
        return
    w = max(len(k) for k in s)
    for k, v in s.items():
        if isinstance(v, float):
            v = f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
        print(f"  {k:<{w}}  {v}")


def _write_plots(out: Path, bundle, s: dict, run) -> None:
    from zeroskip.host import plots

    layers = []
    pred = bundle.manifest["predicted"]["layers"]
    for i, lay in enumerate(pred):
        layers.append({"name": bundle.manifest.get("model", {}).get("layer_names", [None] * len(pred))[i]
                       or f"L{i} P{lay['P']}xQ{lay['Q']}", **lay})
    parts = [s.get("dataset") or "model"]
    if isinstance(s.get("sparsity"), (int, float)):
        parts.append(f"sparsity {s['sparsity']:.2f}")
    title = " · ".join(parts + [f"LANES={s['lanes']}"])
    plots.plot_mac_ops(layers, out / "mac_ops.png", title=f"MACs per layer · {title}")
    ov_s = s["cycles_predicted"] - sum(lay["cycles_sparse"] for lay in layers)
    ov_d = run.cycles_dense_predicted - sum(lay["cycles_dense"] for lay in layers)
    plots.plot_latency(layers, s["clock_mhz"], out / "latency.png", title=f"Latency · {title}",
                       overhead=(ov_d, ov_s))
    plots.plot_block_diagram(out / "block_diagram.png", lanes=s["lanes"])


def _run_and_report(args, bundle_path: Path, out: Path, extra: dict | None = None) -> dict:
    from zeroskip.driver.bundle import load_bundle
    from zeroskip.driver.runner import run_bundle, summary_dict

    bundle = load_bundle(bundle_path)
    t = time.perf_counter()
    run = run_bundle(bundle, args.backend, simulator=args.simulator, quiet=args.quiet)
    wall = time.perf_counter() - t
    s = summary_dict(bundle, run)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(s, indent=1))
    detail = {"summary": s, "timings": run.timings, "sim": run.sim, "wall_s": wall,
              "cycles_dense_predicted": run.cycles_dense_predicted, "dense_mismatches": run.dense_mismatches,
              "n_dense_samples": run.n_dense_samples, **(extra or {})}
    (out / "run_detail.json").write_text(json.dumps(detail, indent=1, default=float))
    try:
        _write_plots(out, bundle, s, run)
        plotted = ", mac_ops.png, latency.png, block_diagram.png"
    except ModuleNotFoundError as e:  # the board-side install is numpy only; plots are optional there
        if (e.name or "").split(".")[0] != "matplotlib":
            raise
        plotted = " (no plots: matplotlib is not installed)"
    _print_summary(args, s)
    ok = run.mismatches == 0 and run.dense_mismatches == 0 and abs(run.cycles_sparse - run.cycles_predicted) < 1e-9
    if not ok:
        raise CliError(f"hardware results differ from the PyTorch integer reference ({run.mismatches} elements, "
                       f"dense {run.dense_mismatches}) or cycles differ from the prediction "
                       f"({s['cycles_sparse']} vs {s['cycles_predicted']}): see {out / 'run_detail.json'}")
    _log(args, f"bit-exact: {run.n_samples} images match the integer reference; cycles = prediction "
               f"({s['cycles_predicted']} per image); written: {out}/summary.json{plotted}")
    return s


# -- commands ---------------------------------------------------------------------------------

def cmd_demo(args) -> int:
    out = _out_dir(args)
    t = time.perf_counter()
    tr = _trained(args)
    path = _export(args, tr, out)
    _run_and_report(args, path, out)
    _log(args, f"demo finished in {time.perf_counter() - t:.1f} s")
    return 0


def cmd_train(args) -> int:
    from zeroskip.host.pipeline import save_qmodel

    out = _out_dir(args) / "model"
    tr = _trained(args)
    out.mkdir(parents=True, exist_ok=True)
    save_qmodel(out / "qmodel", tr.qmodel)
    (out / "train.json").write_text(json.dumps({
        "dataset": args.dataset, "sparsity": tr.sparsity, "accuracy_float": tr.accuracy_float,
        "accuracy_int8": tr.accuracy_int8, "layer_sparsity": tr.layer_sparsity, "seconds": tr.seconds}, indent=1))
    _log(args, f"quantised model: {out}/qmodel.json + qmodel.npz")
    return 0


def cmd_export(args) -> int:
    out = _out_dir(args)
    tr = _trained(args)
    _export(args, tr, out)
    return 0


def cmd_run(args) -> int:
    _run_and_report(args, Path(args.bundle), _out_dir(args))
    return 0


def cmd_sweep(args) -> int:
    from zeroskip.driver.golden import image_timing

    from zeroskip.host import plots
    from zeroskip.host.compiler.lowering import compile_model, weight_bytes
    from zeroskip.host.data.datasets import load_dataset
    from zeroskip.host.pipeline import prune_quantize, train_float

    try:
        sparsities = [float(s) for s in args.sparsities.split(",")]
    except ValueError:
        raise CliError(f"--sparsities must be comma-separated numbers, got {args.sparsities!r}") from None
    if any(not 0 <= s < 1 for s in sparsities):
        raise CliError("every sparsity must be in [0, 1)")
    from dataclasses import replace as _replace

    base_cfg = _replace(_train_cfg(args), sparsity=0.0)
    data = load_dataset(args.dataset, seed=args.seed)
    import copy

    model, _ = train_float(base_cfg, data, quiet=args.quiet)
    hw = _hw(args)
    rows = []
    from tqdm import tqdm

    for s in tqdm(sparsities, desc="sweep", disable=args.quiet):
        cfg = _replace(base_cfg, sparsity=s)
        tr = prune_quantize(cfg, copy.deepcopy(model), data, quiet=True)
        if tr.qmodel.reduce is not None:
            raise CliError("sweep covers TinyCNN; for the sparse-pixel model use zeroskip bench")
        sp, de = compile_model(tr.qmodel, hw), compile_model(tr.qmodel, hw, dense=True)
        ts, td = image_timing(sp), image_timing(de)
        wd, wc = weight_bytes(tr.qmodel, sp)
        rows.append({"sparsity": round(tr.sparsity, 4), "accuracy_float": tr.accuracy_float,
                     "accuracy_int8": tr.accuracy_int8, "cycles_sparse": ts["total"], "cycles_dense": td["total"],
                     "speedup": td["total"] / ts["total"], "mac_utilization": ts["macs"] / (hw.lanes * ts["total"]),
                     "weight_ratio": wc / wd})
    out = _out_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(rows, indent=1))
    plots.plot_sweep(rows, out / "sweep.png", title=f"{args.dataset} · LANES={hw.lanes} (golden-model cycles)")
    if not args.quiet:
        print(f"{'sparsity':>8} {'acc fp':>7} {'acc i8':>7} {'cyc sparse':>10} {'cyc dense':>9} {'speedup':>7} "
              f"{'util':>5} {'bytes':>5}")
        for r in rows:
            print(f"{r['sparsity']:8.3f} {r['accuracy_float']:7.4f} {r['accuracy_int8']:7.4f} {r['cycles_sparse']:10d} "
                  f"{r['cycles_dense']:9d} {r['speedup']:7.2f} {r['mac_utilization']:5.2f} {r['weight_ratio']:5.2f}")
        print(f"written: {out}/sweep.json, {out}/sweep.png")
    return 0


def cmd_bench(args) -> int:
    from zeroskip.host.bench.figures import run_bench

    run_bench(args)
    return 0


# -- parser -----------------------------------------------------------------------------------

def _common(p: argparse.ArgumentParser, train: bool = True, hw: bool = True, backend: bool = False) -> None:
    p.add_argument("--out", default=DEFAULT_OUT, help="folder for everything the command writes (default: outputs/)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or tables")
    if train:
        p.add_argument("--dataset", default=None, choices=("synthetic", "digits", "detector"),
                       help="synthetic 16x16 2-class set (default), scikit-learn's 8x8 digits, or 63x63 "
                            "sparse detector images (with --model sparsepixels, its default)")
        p.add_argument("--model", default="tiny", choices=("tiny", "sparsepixels"),
                       help="TinyCNN (default) or the sparse-pixel CNN for detector images")
        p.add_argument("--n-max", type=_count(1), default=20, help="sparse-pixel input reduce: active pixels kept (20)")
        p.add_argument("--input-mode", default="sites", choices=("sites", "reduce"),
                       help="sparse-pixel input: pre-reduced sites from the driver, or reduced by the engine")
        p.add_argument("--sparsity", type=float, default=0.70, help="global L1 pruning target (default 0.70)")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("--epochs", type=_count(0), default=None, help="training epochs (default: per dataset)")
        p.add_argument("--finetune-epochs", type=_count(0), default=None, help="fine-tuning epochs after pruning")
        p.add_argument("--n-samples", type=_count(1), default=None, help="test images in the bundle (default: all)")
        p.add_argument("--no-cache", action="store_true", help="retrain instead of using the cached model")
    if hw:
        p.add_argument("--lanes", type=int, default=8, choices=(4, 8, 16), help="engine MAC lanes (default 8)")
    if backend:
        p.add_argument("--backend", default="auto", choices=("auto", "board", "sim", "model"),
                       help="auto = board when pynq and the overlay are present, else sim")
        p.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"),
                       help="RTL simulator for the sim backend (default verilator)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="zeroskip", description="Sparse int8 CNN inference on a PYNQ-Z2 overlay "
                                 "(or its simulation): train, prune, quantise, compile, run, check.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("demo", help="the whole flow: train, prune, quantise, export, run, check bit-exact, report")
    _common(p, backend=True)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("train", help="train, prune and quantise; save the quantised model")
    _common(p, hw=False)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("export", help="train (or reuse the cached model) and write a bundle for the board")
    _common(p)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("run", help="run a bundle on the board / simulation / golden model and check it")
    p.add_argument("bundle", help="bundle folder (from zeroskip export)")
    _common(p, train=False, hw=False, backend=True)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("sweep", help="accuracy and cycles against sparsity (one figure)")
    _common(p)
    p.add_argument("--sparsities", default="0.3,0.5,0.6,0.7,0.8,0.9,0.95", help="comma-separated targets")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("bench", help="performance figures: utilisation, speedup, latency, sim throughput, resources")
    _common(p, hw=False, backend=True)
    p.add_argument("--lanes", default="4,8,16", help="LANES values to compare (default 4,8,16)")
    p.add_argument("--no-synth", action="store_true", help="skip the Yosys resource table")
    p.add_argument("--no-sim", action="store_true", help="skip the RTL simulation throughput figures")
    p.add_argument("--no-sparse", action="store_true", help="skip the sparse-pixel figures")
    p.set_defaults(func=cmd_bench)
    return ap


def _known_errors() -> tuple:
    from zeroskip.driver.errors import ZeroSkipError  # every error zeroskip raises on purpose

    return (CliError, FileNotFoundError, PermissionError, ZeroSkipError)


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("zeroskip: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in ("torch", "matplotlib", "sklearn", "tqdm", "cocotb", "pynq"):
            print(f"zeroskip: error: `{args.cmd}` needs the Python package {e.name!r}: install it with "
                  f"pip install 'zeroskip[{'board' if e.name == 'pynq' else 'sim' if e.name == 'cocotb' else 'host'}]'",
                  file=sys.stderr)
            return 2
        raise
    except _known_errors() as e:
        print(f"zeroskip: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
