"""The model zoo on the engine: every :mod:`zeroskip.host.zoo` model trained briefly on
its task-shaped data, pruned while training (masks + fine-tuning, :func:`prune_zoo_model`)
and converted with :func:`zeroskip.host.conversion.convert` for each LANES, with MACs,
cycles, latency, MAC utilisation, the speedup over the same model unpruned on the same
engine, int8 accuracy and (``verify=N``) N test images run bit-exact on the RTL
simulation — beside the published PYNQ-Z2 figures of MLPerf Tiny.

    python -m zeroskip.host.bench.zoo --lanes 8,16 --verify 2 --backend sim --out outputs/zoo

writes ``zoo.json`` (the rows), ``zoo.md`` (the tables) and ``zoo.png`` (latency, log
scale) into the output folder (also ``zeroskip bench --zoo``). ``bench_zoo`` returns the
rows; ``train_zoo_model`` trains (and caches) one zoo model, ``prune_zoo_model`` prunes and
fine-tunes it (cached too).

Definitions (as in :mod:`zeroskip.host.bench.figures`): cycles are the exact golden-model
count of one inference, input and output streams included (``CYCLES − STALL`` on the
RTL); MAC utilisation = the engine's non-zero MACs / (LANES × those cycles) (the MAC
counter of the golden model, the pooling layers the engine runs as convolutions of ones
included); ``mac_utilization_compute`` divides by the layers' cycles only. The speedup
compares with the densely trained model converted without pruning (``sparsity=None``: a
densely trained model has no zero weights, so that is the dense cost) on the same LANES.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLOCK_MHZ = 100.0
TRAIN_VERSION = 1           # bump when the training recipe changes (part of the cache key)
PRUNE_VERSION = 1           # bump when the pruning / fine-tuning recipe changes
DEFAULT_SPARSITY = 0.7

# Per model: training epochs (sized so that all models together train in a few minutes on
# two CPU cores; ResNet-8 on 2000 32×32 images dominates), learning rate, batch size.
TRAIN = {
    "tinycnn": {"epochs": 20, "lr": 3e-3, "batch": 64},
    "lenet5": {"epochs": 12, "lr": 2e-3, "batch": 64},
    "dscnn_kws": {"epochs": 12, "lr": 2e-3, "batch": 64},
    "resnet8": {"epochs": 8, "lr": 2e-3, "batch": 64},
    "fc_autoencoder": {"epochs": 30, "lr": 1e-3, "batch": 64},
    "jet_mlp": {"epochs": 30, "lr": 3e-3, "batch": 64},
}
# Pruning while training: after the dense training, ``steps`` rounds of (masks on the
# smallest weights up to the round's target, on the cubic schedule of Zhu & Gupta 2017,
# then training with the masks in force: Adam, cosine schedule, a lower rate); ``epochs``
# in all, split over the rounds. All six models fine-tune in well under a minute.
FINETUNE = {
    "tinycnn": {"epochs": 12, "steps": 3, "lr": 1e-3, "batch": 64},
    "lenet5": {"epochs": 6, "steps": 3, "lr": 7e-4, "batch": 64},
    "dscnn_kws": {"epochs": 15, "steps": 3, "lr": 1e-3, "batch": 64},
    "resnet8": {"epochs": 9, "steps": 3, "lr": 7e-4, "batch": 64},
    "fc_autoencoder": {"epochs": 15, "steps": 3, "lr": 5e-4, "batch": 64},
    "jet_mlp": {"epochs": 45, "steps": 3, "lr": 2e-3, "batch": 64},
}
# not a convert() model: listed in the table, not benchmarked here
SKIPPED = {"sparsepixels": "sparse-pixel path (input reduce + site lists), not a convert() model: "
                           "measured by `zeroskip bench` (sparse-pixel figures), skipped here"}
CALIB_N = 256

PUBLISHED_SOURCE = ("MLPerf Tiny Inference results v0.7 / v1.0, open division, PYNQ-Z2 (xc7z020) submissions at a "
                    "100 MHz fabric clock; design descriptions in Borras et al., 'Open-source FPGA-ML codesign for "
                    "the MLPerf Tiny Benchmark', arXiv:2206.11791 (2022)")
# Published PYNQ-Z2 latencies per inference (transcribed, not re-measured here). ``ours``
# names the zoo model of the same task the comparison row uses.
PUBLISHED = (
    {"task": "image classification", "design": "hls4ml ResNet RN07", "flow": "hls4ml", "latency_us": 27300.0,
     "ours": "resnet8"},
    {"task": "image classification", "design": "hls4ml ResNet RN08", "flow": "hls4ml", "latency_us": 7650.0,
     "ours": "resnet8"},
    {"task": "image classification", "design": "FINN CNV-W1A1", "flow": "FINN", "latency_us": 1510.0,
     "ours": "resnet8"},
    {"task": "anomaly detection", "design": "hls4ml AD08", "flow": "hls4ml", "latency_us": 18.7,
     "ours": "fc_autoencoder"},
    {"task": "keyword spotting", "design": "FINN MLP W3A3", "flow": "FINN", "latency_us": 17.5,
     "ours": "dscnn_kws"},
)

ROW_FIELDS = ("model", "task", "lanes", "sparsity", "weight_sparsity", "finetune_epochs", "params", "nonzero", "fits",
              "fit_error", "error", "macs_dense",
              "macs_sparse", "cycles", "latency_us", "mac_utilization", "mac_utilization_compute", "cycles_unpruned",
              "speedup", "speedup_basis", "cycles_enlarged", "verified_images", "mismatches", "cycles_per_image_sim",
              "cycles_match", "verify_backend", "verify_path", "bundle_error", "verify_error", "metric",
              "accuracy_float", "accuracy_int8", "accuracy_float_dense",
              "accuracy_int8_unpruned", "mse_float", "mse_int8", "mse_float_dense", "mse_int8_unpruned", "agreement",
              "rel_l2", "note")


# ---------------------------------------------------------------------------- training

def _zoo_source_hash() -> str:
    import zeroskip.host.zoo as zoo_pkg
    h = hashlib.sha256()
    for p in sorted(Path(zoo_pkg.__file__).resolve().parent.glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _train_cfg(name: str, epochs: int | None) -> dict:
    if name not in TRAIN:
        raise ValueError(f"{name}: no training recipe in the zoo bench (models: {', '.join(TRAIN)})")
    cfg = dict(TRAIN[name])
    if epochs is not None:
        if int(epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        cfg["epochs"] = int(epochs)
    return cfg


def cache_key(name: str, seed: int = 0, epochs: int | None = None) -> str:
    """The cache key of one trained zoo model: its name, seed, epochs, the training recipe
    and the sources of ``host/zoo/*.py`` (models and data)."""
    cfg = _train_cfg(name, epochs)
    blob = json.dumps({"name": name, "seed": int(seed), "cfg": cfg, "v": TRAIN_VERSION, "zoo": _zoo_source_hash()},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def zoo_data(name: str, seed: int = 0):
    """``(x_train, y_train, x_test, y_test)`` of the model's task (the entry's default sizes)."""
    from zeroskip.host.zoo import get
    return get(name).dataset(None, None, seed)


def _float_metric(model, task: str, x: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy (classification) or reconstruction MSE (autoencoder) of a float model."""
    import torch
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(torch.as_tensor(x[i:i + 256])) for i in range(0, len(x), 256)]).double().numpy()
    if task == "classification":
        return float(np.mean(out.argmax(1) == y))
    return float(np.mean((out - x.reshape(len(x), -1)) ** 2))


def _fit(model, task: str, x_tr: np.ndarray, y_tr: np.ndarray, cfg: dict, seed: int, quiet: bool,
         label: str) -> None:
    """Adam over shuffled mini-batches (cross-entropy, or MSE against the input for the
    autoencoder) with a cosine schedule; in place. Pruning masks on the model stay in
    force (``torch.nn.utils.prune`` recomputes ``weight`` before every forward)."""
    import torch
    from torch import nn
    from zeroskip.host.training.train import DEFAULT_THREADS, torch_threads
    with torch_threads(DEFAULT_THREADS):     # one thread: as fast on these models, robust on shared cores
        _fit_loop(model, task, x_tr, y_tr, cfg, seed, quiet, label, torch, nn)


def _fit_loop(model, task, x_tr, y_tr, cfg, seed, quiet, label, torch, nn) -> None:
    classify = task == "classification"
    loss_fn = nn.CrossEntropyLoss() if classify else nn.MSELoss()
    xt = torch.as_tensor(x_tr)
    yt = torch.as_tensor(y_tr) if classify else xt.reshape(len(xt), -1)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for ep in range(cfg["epochs"]):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(xt), cfg["batch"]):
            idx = perm[i:i + cfg["batch"]]
            if len(idx) < 2:          # BatchNorm needs two samples
                continue
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        if not quiet:
            print(f"  {label}: epoch {ep + 1}/{cfg['epochs']} loss {total / len(xt):.4f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    model.eval()


def _save(model, path: Path) -> None:
    import torch
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{id(model)}")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)


def train_zoo_model(name: str, seed: int = 0, epochs: int | None = None, cache: bool = True, quiet: bool = True):
    """Train zoo model ``name`` briefly on its data set (Adam; cross-entropy for
    classification, MSE for the autoencoder) and return ``(model, metric)``: the float
    ``nn.Module`` in eval mode and its test accuracy (classification) or reconstruction
    MSE (autoencoder). The state_dict is cached under ``cache_dir("models")`` as
    ``zoo-<name>-<key>.pt`` (:func:`cache_key`)."""
    import torch
    from zeroskip.driver.tools import cache_dir
    from zeroskip.host.zoo import get

    entry = get(name)
    cfg = _train_cfg(name, epochs)
    x_tr, y_tr, x_te, y_te = zoo_data(name, seed)
    path = cache_dir("models") / f"zoo-{name}-{cache_key(name, seed, epochs)}.pt"
    torch.manual_seed(seed)
    model = entry.factory()
    if cache and path.is_file():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        model.eval()
        return model, _float_metric(model, entry.task, x_te, y_te)
    _fit(model, entry.task, x_tr, y_tr, cfg, seed, quiet, name)
    if cache:
        _save(model, path)
    return model, _float_metric(model, entry.task, x_te, y_te)


# ---------------------------------------------------------------------------- pruning while training

def _finetune_cfg(name: str, epochs: int | None) -> dict:
    if name not in FINETUNE:
        raise ValueError(f"{name}: no fine-tuning recipe in the zoo bench (models: {', '.join(FINETUNE)})")
    cfg = dict(FINETUNE[name])
    if epochs is not None:
        if int(epochs) < 0:
            raise ValueError(f"fine-tuning epochs must be >= 0, got {epochs}")
        cfg["epochs"] = int(epochs)
    return cfg


def model_sparsity(sparsity, name: str) -> float | None:
    """The pruning target of ``name``: ``sparsity`` itself (a number or ``None``), or its
    entry in a ``{name: fraction}`` map (``"default"``: the others; else
    :data:`DEFAULT_SPARSITY`)."""
    if isinstance(sparsity, dict):
        s = sparsity.get(name, sparsity.get("default", DEFAULT_SPARSITY))
    else:
        s = sparsity
    if s is None:
        return None
    s = float(s)
    if not 0.0 <= s < 1.0:
        raise ValueError(f"{name}: sparsity must be in [0, 1), got {s}")
    return s


def parse_sparsity(text: str):
    """``"0.7"`` → 0.7; ``"0.7,fc_autoencoder=0.9"`` → ``{"default": 0.7, "fc_autoencoder": 0.9}``
    (``"none"``: no pruning)."""
    out: dict = {}
    for tok in (t.strip() for t in str(text).split(",")):
        if not tok:
            continue
        key, _, val = tok.rpartition("=")
        v = None if val.strip().lower() == "none" else float(val)
        if v is not None and not 0.0 <= v < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {v}")
        out[key.strip() or "default"] = v
    if not out:
        raise ValueError("empty --sparsity")
    return out["default"] if list(out) == ["default"] else out


def prune_cache_key(name: str, sparsity: float, seed: int = 0, epochs: int | None = None,
                    finetune_epochs: int | None = None) -> str:
    """The cache key of one pruned, fine-tuned zoo model: the dense model's
    :func:`cache_key`, the sparsity, the fine-tuning recipe (epochs included)."""
    blob = json.dumps({"dense": cache_key(name, seed, epochs), "sparsity": round(float(sparsity), 6),
                       "ft": _finetune_cfg(name, finetune_epochs), "v": PRUNE_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _mask_layer_normalised(model, sparsity: float) -> int:
    """Pruning masks on every Conv2d / Linear weight: the ``sparsity`` fraction with the
    smallest |w| / RMS(layer) over all layers together (the ranking of ``convert``'s
    one-shot pass, :func:`zeroskip.host.ir.passes.prune.prune_global_l1`; raw |w| would
    empty small-scale layers). Returns the number of weights masked."""
    import torch
    from torch.nn.utils import prune
    from zeroskip.host.training.prune import prunable_layers
    layers = [m for _, m in prunable_layers(model)]
    if not layers:
        raise ValueError("model has no Conv2d or Linear layer to prune")
    scores = {}
    for m in layers:
        w = m.weight.detach().abs()
        rms = float(torch.sqrt((w * w).mean()))
        scores[(m, "weight")] = w / rms if rms > 0 else w
    count = round(sparsity * sum(m.weight.numel() for m in layers))
    prune.global_unstructured([(m, "weight") for m in layers], pruning_method=prune.L1Unstructured,
                              importance_scores=scores, amount=count)
    return count


@dataclasses.dataclass
class ZooModels:
    """A zoo model trained densely and its pruned, fine-tuned copy (the same object when
    ``sparsity`` is ``None``). ``metric*``: test accuracy, or reconstruction MSE for the
    autoencoder. ``weight_sparsity``: zeros / conv+linear weights of ``pruned``."""

    name: str
    task: str
    dense: object
    pruned: object
    metric_dense: float
    metric_pruned: float
    sparsity: float | None
    weight_sparsity: float
    finetune_epochs: int
    seconds_train: float
    seconds_finetune: float
    cached_pruned: bool


def prune_zoo_model(name: str, sparsity: float | None = DEFAULT_SPARSITY, seed: int = 0, epochs: int | None = None,
                    finetune_epochs: int | None = None, cache: bool = True, quiet: bool = True) -> ZooModels:
    """Train (or load) zoo model ``name`` densely, then prune it while training, in
    :data:`FINETUNE` ``steps`` rounds towards ``sparsity``: masks on the smallest
    conv/linear weights (layer-normalised global L1, :func:`_mask_layer_normalised`),
    training with the masks in force (:data:`FINETUNE` epochs in all; ``finetune_epochs``
    overrides, 0: one-shot masks), the masks baked in
    (:func:`zeroskip.host.training.prune.finalize`; zeros of earlier rounds rank lowest).
    The pruned state_dict is cached as ``zoo-pruned-<name>-<key>.pt``
    (:func:`prune_cache_key`)."""
    import copy

    import torch
    from zeroskip.driver.tools import cache_dir
    from zeroskip.host.training.prune import finalize, weight_sparsity
    from zeroskip.host.zoo import get

    entry = get(name)
    t0 = time.perf_counter()
    dense, metric = train_zoo_model(name, seed=seed, epochs=epochs, cache=cache, quiet=quiet)
    t_train = time.perf_counter() - t0
    if sparsity is None:
        return ZooModels(name, entry.task, dense, dense, metric, metric, None, weight_sparsity(dense), 0, t_train,
                         0.0, False)
    sparsity = model_sparsity(sparsity, name)
    cfg = _finetune_cfg(name, finetune_epochs)
    x_tr, y_tr, x_te, y_te = zoo_data(name, seed)
    key = prune_cache_key(name, sparsity, seed, epochs, finetune_epochs)
    path = cache_dir("models") / f"zoo-pruned-{name}-{key}.pt"
    t1 = time.perf_counter()
    pruned = copy.deepcopy(dense)
    cached = False
    if cache and path.is_file():
        pruned.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        cached = True
    else:
        steps = max(1, min(int(cfg["steps"]), cfg["epochs"]))
        for k in range(1, steps + 1):
            target = sparsity * (1.0 - (1.0 - k / steps) ** 3)
            _mask_layer_normalised(pruned, target)
            ep_k = cfg["epochs"] // steps + (1 if k <= cfg["epochs"] % steps else 0)
            if ep_k > 0:
                _fit(pruned, entry.task, x_tr, y_tr, dict(cfg, epochs=ep_k), seed + k, quiet,
                     f"{name} fine-tune {k}/{steps} (sparsity {target:.3f})")
            finalize(pruned)
        if cache:
            _save(pruned, path)
    pruned.eval()
    return ZooModels(name, entry.task, dense, pruned, metric, _float_metric(pruned, entry.task, x_te, y_te),
                     sparsity, weight_sparsity(pruned), cfg["epochs"], t_train, time.perf_counter() - t1, cached)


# ---------------------------------------------------------------------------- one conversion

def _enlarged(hw):
    """The same LANES with every capacity raised far beyond the board's: for cycle counts
    of models that do not fit (cycles do not depend on the capacities)."""
    return dataclasses.replace(hw, act_bytes=65536).unbounded()


def _engine_figures(conv) -> dict:
    from zeroskip.driver.golden import image_timing
    rows = [r for r in conv.layers() if r["params"] > 0]       # pooling layers' weights of ones excluded
    f = {"params": sum(r["params"] for r in rows), "nonzero": sum(r["nonzero"] for r in rows),
         "macs_dense": sum(r["macs_dense"] for r in rows), "macs_sparse": sum(r["macs_sparse"] for r in rows)}
    if conv.program is not None:
        t = image_timing(conv.program)
        lanes = conv.hw.lanes
        f.update(cycles=int(t["total"]), latency_us=t["total"] / CLOCK_MHZ,
                 mac_utilization=t["macs"] / (lanes * t["total"]),
                 mac_utilization_compute=t["macs"] / (lanes * max(1, t["compute"])))
    return f


def _cycles_on(qmodel, hw) -> tuple[int | None, str | None]:
    from zeroskip.driver.errors import CompileError
    from zeroskip.driver.golden import image_timing
    from zeroskip.host.compiler import compile_model
    try:
        return int(image_timing(compile_model(qmodel, hw))["total"]), None
    except CompileError as e:
        return None, str(e)


def _int8_metrics(conv, task: str, x_te: np.ndarray, y_te: np.ndarray) -> dict:
    yq = conv.predict_int(x_te).astype(np.float64) * conv.output_scale
    ag = conv.agreement(x_te)
    if task == "classification":
        return {"accuracy_int8": float(np.mean(yq.argmax(1) == y_te)), "agreement": ag["argmax_agreement"],
                "rel_l2": ag["rel_l2"]}
    return {"mse_int8": float(np.mean((yq - x_te.reshape(len(x_te), -1)) ** 2)), "rel_l2": ag["rel_l2"],
            "accuracy_int8": None, "agreement": None}


def _verify_program(conv, x: np.ndarray, backend: str) -> dict:
    """The conversion's program straight onto the backend (no bundle): outputs against
    the integer reference, cycles per image."""
    from zeroskip.driver import ZeroSkip, open_backend
    from zeroskip.driver.bundle import pack_inputs
    from zeroskip.driver.program import encode_program

    xi = conv.quantize_inputs(x)
    expected = conv.predict_int(x)
    be = open_backend(backend, hw=conv.hw, quiet=True) if backend == "sim" else open_backend(backend, hw=conv.hw)
    try:
        drv = ZeroSkip(be)
        drv.load_program(encode_program(conv.program))
        res = drv.run(pack_inputs(xi, conv.program.meta["input_layout"]))
    finally:
        if hasattr(be, "close"):
            be.close()
    return {"images": int(xi.shape[0]), "mismatches": int(np.count_nonzero(res.outputs != expected)),
            "cycles_per_image": float(res.cycles_per_image)}


def _verify(conv, x: np.ndarray, backend: str) -> dict:
    """N test images on ``backend`` through the documented path (export a bundle,
    ``Model(bundle).verify()``); when the export or the bundle's load check fails, the
    program itself is run (``verify_path`` says which, ``bundle_error`` why)."""
    from zeroskip.driver.errors import BundleError, CompileError
    from zeroskip.driver.predict import Model
    out = {"verify_backend": backend, "verify_path": "bundle"}
    try:
        with tempfile.TemporaryDirectory(prefix="zs-zoo-") as tmp:
            bundle = conv.export(Path(tmp) / "bundle", test_inputs=x)
            with Model(bundle, backend=backend) as m:
                v = m.verify()
    except (BundleError, CompileError) as e:
        out["bundle_error"] = f"{type(e).__name__}: {e}"
        out["verify_path"] = "program (bundle failed)"
        v = _verify_program(conv, x, backend)
    cpi = float(v["cycles_per_image"])
    out.update(verified_images=int(v["images"]), mismatches=int(v["mismatches"]), cycles_per_image_sim=cpi,
               cycles_match=bool(cpi == conv.cycles()))
    return out


def _empty_row(name: str, task: str, lanes: int | None) -> dict:
    r = dict.fromkeys(ROW_FIELDS)
    r.update(model=name, task=task, lanes=lanes, fits=False)
    return r


# ---------------------------------------------------------------------------- the bench

def bench_zoo(models=None, lanes=(8, 16), sparsity: float | dict | None = DEFAULT_SPARSITY, verify: int = 0,
              out_dir: str | Path | None = "outputs/zoo", backend: str = "sim", *, seed: int = 0,
              epochs: int | dict | None = None, finetune_epochs: int | dict | None = None, cache: bool = True,
              hw=None, quiet: bool = True) -> list[dict]:
    """Train (or load), convert and measure every zoo model at every LANES; return the
    rows (one per model × LANES, plus one for each skipped model) and write ``zoo.json``,
    ``zoo.md`` and ``zoo.png`` into ``out_dir`` (``None``: write nothing).

    ``sparsity``: the pruning target (a fraction, ``{name: fraction}`` with an optional
    ``"default"`` key, or ``None``: no pruning). Each model is pruned while training
    (:func:`prune_zoo_model`: masks, ``finetune_epochs`` of training with them, an int or
    ``{name: epochs}``, default :data:`FINETUNE`) and converted with ``sparsity=None``;
    the unpruned figures come from the densely trained model. ``verify=N``: run N test
    images of each fitting conversion on ``backend`` (``"sim"``: the RTL simulation;
    ``"model"``: the golden model) from an exported bundle and compare them with the
    integer reference and the predicted cycles.
    ``epochs``: an int for every model or ``{name: epochs}``. ``hw``: a
    :class:`~zeroskip.driver.program.HwConfig` whose capacities replace the defaults (its
    LANES is replaced by each of ``lanes``). Errors of one model are recorded in its row
    (``error``), never raised."""
    from zeroskip.driver.program import HwConfig
    from zeroskip.host.conversion import convert
    from zeroskip.host.zoo import ZOO, get

    names = list(ZOO) if models is None else [models] if isinstance(models, str) else list(models)
    for n in names:
        get(n)                                   # unknown names fail here, before any training
    lanes = [int(v) for v in ([lanes] if isinstance(lanes, int) else lanes)]
    rows: list[dict] = []
    for name in names:
        entry = get(name)
        if name in SKIPPED:
            r = _empty_row(name, entry.task, None)
            r["note"] = SKIPPED[name]
            rows.append(r)
            continue
        ep = epochs.get(name) if isinstance(epochs, dict) else epochs
        fep = finetune_epochs.get(name) if isinstance(finetune_epochs, dict) else finetune_epochs
        t0 = time.perf_counter()
        try:
            zm = prune_zoo_model(name, model_sparsity(sparsity, name), seed=seed, epochs=ep, finetune_epochs=fep,
                                 cache=cache, quiet=quiet)
            x_tr, y_tr, x_te, y_te = zoo_data(name, seed)
        except Exception as e:   # noqa: BLE001 - a model's failure is reported in its row
            for L in lanes:
                r = _empty_row(name, entry.task, L)
                r["error"] = f"training: {type(e).__name__}: {e}"
                rows.append(r)
            continue
        if not quiet:
            what = "accuracy" if entry.task == "classification" else "MSE"
            print(f"{name}: trained and pruned to {zm.weight_sparsity:.3f} ({time.perf_counter() - t0:.0f} s; "
                  f"fine-tune {zm.finetune_epochs} epochs{', cached' if zm.cached_pruned else ''}), float {what} "
                  f"dense {zm.metric_dense:.4f}, pruned {zm.metric_pruned:.4f}", flush=True)
        calib = x_tr[:CALIB_N]
        shared: dict = {}                        # quantisation does not depend on LANES
        for L in lanes:
            t1 = time.perf_counter()
            r = _empty_row(name, entry.task, L)
            r["metric"] = "accuracy" if entry.task == "classification" else "mse"
            r.update(sparsity=zm.sparsity, weight_sparsity=zm.weight_sparsity, finetune_epochs=zm.finetune_epochs)
            if entry.task == "classification":
                r["accuracy_float"], r["accuracy_float_dense"] = zm.metric_pruned, zm.metric_dense
            else:
                r["mse_float"], r["mse_float_dense"] = zm.metric_pruned, zm.metric_dense
            hw_l = HwConfig(lanes=L) if hw is None else dataclasses.replace(hw, lanes=L)
            try:
                conv = convert(zm.pruned, calib, sparsity=None, hw=hw_l, name=name)
                dense = convert(zm.dense, calib, sparsity=None, hw=hw_l, name=name) \
                    if zm.pruned is not zm.dense else conv
            except Exception as e:   # noqa: BLE001
                r["error"] = f"{type(e).__name__}: {e}"
                rows.append(r)
                if not quiet:
                    print(f"  LANES={L}: {r['error']}", flush=True)
                continue
            r["fits"] = conv.fits
            r["fit_error"] = conv.fit_error
            r.update(_engine_figures(conv))
            if "int8" not in shared:
                shared["int8"] = _int8_metrics(conv, entry.task, x_te, y_te)
                yd = dense.predict_int(x_te).astype(np.float64)
                if entry.task == "classification":
                    shared["int8"]["accuracy_int8_unpruned"] = float(np.mean(yd.argmax(1) == y_te))
                else:
                    shared["int8"]["mse_int8_unpruned"] = float(np.mean(
                        (yd * dense.output_scale - x_te.reshape(len(x_te), -1)) ** 2))
            r.update(shared["int8"])
            # the unpruned model on the same engine: as converted, or (when only the pruned
            # one fits) on the same LANES with the capacities raised
            if dense.program is not None:
                r["cycles_unpruned"], r["speedup_basis"] = dense.cycles(), "unpruned, same overlay"
            else:
                r["cycles_unpruned"], _ = _cycles_on(dense.qmodel, _enlarged(hw_l))
                r["speedup_basis"] = "unpruned, same LANES, capacities raised (it does not fit the overlay)"
            if conv.fits:
                if r["cycles_unpruned"]:
                    r["speedup"] = r["cycles_unpruned"] / r["cycles"]
            else:
                r["cycles_enlarged"], _ = _cycles_on(conv.qmodel, _enlarged(hw_l))
                r["note"] = "does not fit: cycles_enlarged = the same LANES with the capacities raised"
            if verify and conv.fits:
                try:
                    r.update(_verify(conv, x_te[:int(verify)], backend))
                except Exception as e:   # noqa: BLE001
                    r["verify_error"] = f"{type(e).__name__}: {e}"
                    r["verify_backend"] = backend
            rows.append(r)
            if not quiet:
                print(f"  LANES={L}: {_short(r)} ({time.perf_counter() - t1:.0f} s)", flush=True)
    if out_dir is not None:
        write_outputs(rows, out_dir, sparsity=sparsity, verify=verify, backend=backend)
    return rows


def _short(r: dict) -> str:
    if r.get("error"):
        return r["error"]
    if not r["fits"]:
        return f"does not fit ({r['fit_error']})"
    s = f"{r['cycles']} cycles = {r['latency_us']:.1f} us, util {r['mac_utilization']:.3f}"
    if r.get("speedup"):
        s += f", speedup {r['speedup']:.2f}x"
    if r.get("verified_images"):
        s += f", verified {r['verified_images']} on {r['verify_backend']}: {r['mismatches']} mismatches, " \
             f"cycles {'match' if r['cycles_match'] else 'DIFFER'}"
    if r.get("verify_error"):
        s += f", verify failed: {r['verify_error']}"
    return s


# ---------------------------------------------------------------------------- outputs

def _fmt(v, spec: str = "", none: str = "–") -> str:
    if v is None:
        return none
    if isinstance(v, bool):
        return "yes" if v else "no"
    return format(v, spec) if spec else str(v)


def _quality(r: dict) -> str:
    if r.get("metric") == "accuracy":
        s = f"{_fmt(r['accuracy_float'], '.3f')} / {_fmt(r['accuracy_int8'], '.3f')}"
        return s + f" ({_fmt(r.get('accuracy_float_dense'), '.3f')} / {_fmt(r.get('accuracy_int8_unpruned'), '.3f')})"
    if r.get("metric") == "mse":
        return f"MSE {_fmt(r['mse_float'], '.3f')} / {_fmt(r['mse_int8'], '.3f')} " \
               f"({_fmt(r.get('mse_float_dense'), '.3f')} / {_fmt(r.get('mse_int8_unpruned'), '.3f')})"
    return "–"


TABLE_HEAD = ["model", "LANES", "params", "non-zero", "fits", "MACs dense", "MACs sparse", "cycles",
              "latency µs", "MAC util (compute)", "speedup", "verified", "mismatches", "cycles = golden",
              "pruned float / int8 (dense float / int8)", "agreement / rel L2"]


def table_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        if r.get("note") and r["lanes"] is None:
            out.append([r["model"], "–", "–", "–", "skipped"] + ["–"] * (len(TABLE_HEAD) - 5))
            continue
        if r.get("error"):
            out.append([r["model"], str(r["lanes"]), "–", "–", "error"] + ["–"] * (len(TABLE_HEAD) - 5))
            continue
        util = "–" if r["mac_utilization"] is None else \
            f"{r['mac_utilization']:.3f} ({r['mac_utilization_compute']:.3f})"
        ver = "–" if r.get("verified_images") is None else f"{r['verified_images']} ({r['verify_backend']})"
        if r.get("bundle_error") and r.get("verified_images") is not None:
            ver += " †"
        if r.get("verify_error"):
            ver = "failed"
        agr = f"{_fmt(r['agreement'], '.3f')} / {_fmt(r['rel_l2'], '.3f')}"
        out.append([r["model"], str(r["lanes"]), _fmt(r["params"]), _fmt(r["nonzero"]), _fmt(r["fits"]),
                    _fmt(r["macs_dense"]), _fmt(r["macs_sparse"]), _fmt(r["cycles"]), _fmt(r["latency_us"], ".1f"),
                    util, _fmt(r["speedup"], ".2f"), ver, _fmt(r["mismatches"]), _fmt(r["cycles_match"]),
                    _quality(r), agr])
    return out


def _ours(rows: list[dict], model: str) -> list[dict]:
    return [r for r in rows if r["model"] == model and r.get("latency_us") is not None]


def comparison(rows: list[dict]) -> list[dict]:
    """Each published design beside our zoo model of the same task: our best latency
    (over the LANES measured) and the ratio ours / published (> 1: the published design
    is faster)."""
    out = []
    for p in PUBLISHED:
        ours = _ours(rows, p["ours"])
        c = dict(p)
        if ours:
            best = min(ours, key=lambda r: r["latency_us"])
            c.update(our_latency_us=best["latency_us"], our_lanes=best["lanes"],
                     ratio=best["latency_us"] / p["latency_us"], our_estimate=False)
        else:
            est = [r for r in rows if r["model"] == p["ours"] and r.get("cycles_enlarged")]
            if est:
                best = min(est, key=lambda r: r["cycles_enlarged"])
                lat = best["cycles_enlarged"] / CLOCK_MHZ
                c.update(our_latency_us=lat, our_lanes=best["lanes"], ratio=lat / p["latency_us"], our_estimate=True)
            else:
                c.update(our_latency_us=None, our_lanes=None, ratio=None, our_estimate=False)
        out.append(c)
    return out


def _md_table(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in body]
    return "\n".join(lines)


def _verdict(rows: list[dict], comp: list[dict]) -> list[str]:
    """Plain sentences: where the published per-model dataflow designs stay ahead, by how much."""
    out = []
    for c in comp:
        if c["ratio"] is None and not any(r["model"] == c["ours"] for r in rows):
            continue                          # not in this run
        if c["ratio"] is None:
            out.append(f"- {c['task']}: {c['design']} {c['latency_us']:g} µs; our `{c['ours']}` has no measured "
                       "latency (it does not fit the overlay, see the notes).")
            continue
        est = " (estimate: it does not fit the overlay; the same LANES with raised capacities)" \
            if c["our_estimate"] else ""
        if c["ratio"] > 1:
            out.append(f"- {c['task']}: **{c['design']} stays ahead**, {c['latency_us']:g} µs against our "
                       f"`{c['ours']}` at LANES={c['our_lanes']} {c['our_latency_us']:.1f} µs{est}: "
                       f"**{c['ratio']:.1f}× faster**.")
        else:
            out.append(f"- {c['task']}: our `{c['ours']}` at LANES={c['our_lanes']} {c['our_latency_us']:.1f} µs{est} "
                       f"against {c['design']} {c['latency_us']:g} µs: ours {1 / c['ratio']:.1f}× faster.")
    return out


def _sparsity_text(sparsity) -> str:
    if isinstance(sparsity, dict):
        return ", ".join(f"{k} {v if v is not None else 'none'}" for k, v in sparsity.items())
    return "none" if sparsity is None else f"{sparsity:g}"


def render_markdown(rows: list[dict], *, sparsity=None, verify: int = 0, backend: str = "sim") -> str:
    comp = comparison(rows)
    ft = sorted({(r["model"], r["finetune_epochs"]) for r in rows if r.get("finetune_epochs")})
    lines = ["# Model zoo on the zero-skipping overlay", "",
             f"Pruned while training to {_sparsity_text(sparsity)} zeros (global L1 on layer-normalised "
             "magnitudes, in rounds with training under the masks in between"
             + (": " + ", ".join(f"{m} {e} epochs" for m, e in ft) if ft else "")
             + f"), converted with `sparsity=None`; int8, {CLOCK_MHZ:g} MHz; cycles per inference from the "
             "golden model (input and output streams included)"
             + (f", {verify} test images per conversion run on `{backend}` and compared bit-exact and "
                 "cycle-exact." if verify else "."), "",
             _md_table(TABLE_HEAD, table_rows(rows)), "",
             "MAC util = engine MACs / (LANES × cycles); in brackets the layers' cycles only. speedup = cycles of "
             "the unpruned model on the same LANES / cycles of the pruned one. pruned float / int8: test accuracy "
             "of the pruned, fine-tuned float model and of its int8 conversion (in brackets the densely trained "
             "float model and its int8 conversion); for the autoencoder reconstruction MSE. agreement: argmax "
             "agreement int8 vs the pruned float graph; rel L2: relative L2 error of the int8 outputs against it. "
             "†: exporting or loading the bundle failed (see "
             "the notes); the program was run on the backend directly.", ""]
    notes = [f"- `{r['model']}`" + (f" LANES={r['lanes']}" if r["lanes"] else "") + ": " + txt
             for r in rows
             for txt in ([r["note"]] if r.get("note") and not r.get("fit_error") else []) +
             ([f"does not fit: {r['fit_error']}" + (f" (with raised capacities: {r['cycles_enlarged']} cycles = "
                                                   f"{r['cycles_enlarged'] / CLOCK_MHZ:.1f} µs)"
                                                   if r.get("cycles_enlarged") else "")]
              if r.get("fit_error") else []) +
             ([f"error: {r['error']}"] if r.get("error") else []) +
             ([f"verification failed: {r['verify_error']}"] if r.get("verify_error") else []) +
             ([f"the bundle path failed ({r['bundle_error']}); verified by running the program itself"]
              if r.get("bundle_error") else [])]
    if notes:
        lines += ["Notes:", ""] + notes + [""]
    lines += ["## Published PYNQ-Z2 results", "", f"Source: {PUBLISHED_SOURCE}.", "",
              _md_table(["task", "design", "flow", "latency µs", "our model", "ours µs (LANES)", "ours / published"],
                        [[c["task"], c["design"], c["flow"], f"{c['latency_us']:g}", f"`{c['ours']}`",
                          "–" if c["our_latency_us"] is None else
                          f"{c['our_latency_us']:.1f} ({c['our_lanes']}){' est.' if c['our_estimate'] else ''}",
                          "–" if c["ratio"] is None else f"{c['ratio']:.2f}"] for c in comp]), "",
              "Accuracy here is on synthetic / offline task-shaped data sets (`zeroskip.host.zoo.data`), trained "
              "for a few epochs: it is **not comparable** with MLPerf Tiny's accuracy on the real data sets. "
              "Latency (one inference at 100 MHz) and FPGA resources are comparable: the same board and clock. "
              "The networks differ: MLPerf's open-division submissions are their own quantised, co-designed "
              "models (e.g. FINN's KWS entry is an MLP, ours the reference DS-CNN).", "",
              "Ours against each published design (where a per-model dataflow design stays ahead, in bold):", ""]
    lines += _verdict(rows, comp)
    lines += ["", "One overlay runs every model from a program loaded at run time (no re-synthesis per model); "
              "a per-model dataflow design instantiates every layer in hardware and pipelines them. It stays "
              "ahead on the small fully connected models (anomaly detection, the KWS MLP), where our engine "
              "pushes every weight through LANES multipliers one layer after another; for the KWS row the "
              "networks differ (their MLP, our DS-CNN), and our own 4k-parameter jet MLP takes "
              + (", ".join(f"{r['latency_us']:.1f} µs at LANES={r['lanes']}" for r in _ours(rows, "jet_mlp"))
                 or "– (not measured)") + ".", ""]
    return "\n".join(lines)


def plot_zoo(rows: list[dict], path: str | Path) -> Path:
    """Horizontal bars, log scale: our latency per model at each LANES and the published
    PYNQ-Z2 figures, grouped by task."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lanes = sorted({r["lanes"] for r in rows if r["lanes"]})
    cmap = plt.get_cmap("tab10")
    colours = {L: cmap(i) for i, L in enumerate(lanes)}
    bars: list[tuple[str, float | None, object, str]] = []     # label, value, colour, hatch
    order = {"image classification": 0, "keyword spotting": 1, "anomaly detection": 2}
    task_of = {p["ours"]: p["task"] for p in PUBLISHED}
    models = []
    for r in rows:
        if r["lanes"] and r["model"] not in models:
            models.append(r["model"])
    models.sort(key=lambda m: order.get(task_of.get(m, ""), 9))
    seen_tasks = set()
    for m in models:
        for L in lanes:
            r = next((x for x in rows if x["model"] == m and x["lanes"] == L), None)
            if r is None:
                continue
            if r.get("latency_us") is not None:
                bars.append((f"{m} LANES={L}", r["latency_us"], colours[L], ""))
            elif r.get("cycles_enlarged"):
                bars.append((f"{m} LANES={L} (no fit, est.)", r["cycles_enlarged"] / CLOCK_MHZ, colours[L], "//"))
            else:
                bars.append((f"{m} LANES={L} (no fit)", None, colours[L], ""))
        t = task_of.get(m)
        if t and t not in seen_tasks:
            seen_tasks.add(t)
            for p in PUBLISHED:
                if p["task"] == t:
                    bars.append((f"{p['design']} (published)", p["latency_us"], "#9aa5b1", ""))
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(bars) + 1.5))
    ys = list(range(len(bars)))[::-1]
    vals = [b[1] for b in bars if b[1]]
    lo = min(vals) / 3 if vals else 1.0
    for y, (_label, v, col, hatch) in zip(ys, bars):
        if v is None:
            ax.text(lo * 1.1, y, "does not fit", va="center", fontsize=7, color="#555")
            continue
        ax.barh(y, v, color=col, hatch=hatch, edgecolor="white" if not hatch else "#333")
        ax.text(v * 1.08, y, f"{v:,.0f} µs" if v >= 100 else f"{v:.3g} µs", va="center", fontsize=7)
    ax.set_yticks(ys, [b[0] for b in bars], fontsize=8)
    ax.set_xscale("log")
    if vals:
        ax.set_xlim(lo, max(vals) * 6)
    ax.set_xlabel(f"latency per inference (µs at {CLOCK_MHZ:g} MHz, log scale)")
    ax.set_title("Model zoo on the overlay vs published PYNQ-Z2 designs (grey)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_outputs(rows: list[dict], out_dir, *, sparsity=None, verify: int = 0, backend: str = "sim") -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "zoo.json", "md": out / "zoo.md", "png": out / "zoo.png"}
    paths["json"].write_text(json.dumps(rows, indent=1))
    paths["md"].write_text(render_markdown(rows, sparsity=sparsity, verify=verify, backend=backend))
    plot_zoo(rows, paths["png"])
    return paths


def text_table(rows: list[dict]) -> str:
    from zeroskip.host.bench.figures import _table
    return _table(table_rows(rows), TABLE_HEAD)


# ---------------------------------------------------------------------------- CLI

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zeroskip.host.bench.zoo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=None, help="comma-separated zoo names (default: all)")
    ap.add_argument("--lanes", default="8,16", help="comma-separated LANES values (default 8,16)")
    ap.add_argument("--sparsity", type=parse_sparsity, default=DEFAULT_SPARSITY,
                    help="pruning target (default 0.7); per model: 0.7,fc_autoencoder=0.9 ('none': unpruned)")
    ap.add_argument("--verify", type=int, default=0, help="test images per conversion to run on --backend")
    ap.add_argument("--backend", default="sim", choices=("sim", "model"), help="verification backend")
    ap.add_argument("--out", default="outputs/zoo", help="output folder (zoo.json, zoo.md, zoo.png)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs for every model (default: per model)")
    ap.add_argument("--finetune-epochs", type=int, default=None,
                    help="fine-tuning epochs under the pruning masks, every model (default: per model)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-cache", action="store_true", help="retrain even when a cached model exists")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    models = None if a.models is None else [m.strip() for m in a.models.split(",") if m.strip()]
    lanes = [int(v) for v in a.lanes.split(",") if v.strip()]
    t = time.perf_counter()
    rows = bench_zoo(models, lanes=lanes, sparsity=a.sparsity, verify=a.verify, out_dir=a.out, backend=a.backend,
                     seed=a.seed, epochs=a.epochs, finetune_epochs=a.finetune_epochs, cache=not a.no_cache,
                     quiet=a.quiet)
    print()
    print(text_table(rows))
    print()
    for line in _verdict(rows, comparison(rows)):
        print(line.replace("**", ""))
    print(f"\nwritten: {Path(a.out) / 'zoo.json'}, zoo.md, zoo.png ({time.perf_counter() - t:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
