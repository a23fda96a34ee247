"""The zoo bench (zeroskip.host.bench.zoo): rows, verification on the golden-model
backend, the written files, pruning while training (cached), and a model that does not
fit reported as such."""

import json

import pytest

pytestmark = pytest.mark.ml

from zeroskip.driver.program import HwConfig  # noqa: E402
from zeroskip.host.bench import zoo as zb  # noqa: E402

REQUIRED = ("model", "lanes", "params", "nonzero", "fits", "fit_error", "macs_dense", "macs_sparse", "cycles",
            "latency_us", "mac_utilization", "speedup", "verified_images", "mismatches", "accuracy_float",
            "accuracy_int8", "accuracy_float_dense", "agreement", "cycles_match", "sparsity", "weight_sparsity",
            "finetune_epochs")


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROSKIP_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_bench_zoo_small(tmp_cache):
    out = tmp_cache / "zoo"
    rows = zb.bench_zoo(["jet_mlp", "tinycnn"], lanes=(8,), sparsity=0.7, verify=2, out_dir=out, backend="model",
                        epochs=1, finetune_epochs=2)
    assert [r["model"] for r in rows] == ["jet_mlp", "tinycnn"]
    for r in rows:
        for k in REQUIRED:
            assert k in r, k
        assert r["error"] is None and r["verify_error"] is None, r
        assert r["lanes"] == 8 and r["fits"] is True and r["fit_error"] is None
        assert r["verified_images"] == 2 and r["mismatches"] == 0 and r["cycles_match"] is True
        assert r["cycles_per_image_sim"] == r["cycles"]
        assert r["latency_us"] == pytest.approx(r["cycles"] / 100.0)
        assert 0 < r["nonzero"] < r["params"] and 0 < r["macs_sparse"] < r["macs_dense"]
        assert 0 < r["mac_utilization"] <= r["mac_utilization_compute"] <= 1.0
        # the speedup comes from a second, unpruned conversion on the same overlay
        assert r["speedup_basis"] == "unpruned, same overlay"
        assert r["cycles_unpruned"] > r["cycles"] and r["speedup"] == pytest.approx(r["cycles_unpruned"] / r["cycles"])
        assert 0.0 <= r["accuracy_float"] <= 1.0 and 0.0 <= r["accuracy_int8"] <= 1.0
        assert 0.0 <= r["accuracy_float_dense"] <= 1.0 and 0.0 <= r["accuracy_int8_unpruned"] <= 1.0
        assert 0.0 <= r["agreement"] <= 1.0
        # pruned while training: the model converted without further pruning has the target's zeros
        assert r["sparsity"] == 0.7 and r["finetune_epochs"] == 2
        assert r["weight_sparsity"] == pytest.approx(0.7, abs=1e-3)
        assert r["nonzero"] / r["params"] == pytest.approx(0.3, abs=0.01)
    # the model's train/cache path: the second call loads the cached state_dicts
    models = tmp_cache / "cache" / "models"
    assert len(list(models.glob("zoo-jet_mlp-*.pt"))) == 1
    assert len(list(models.glob("zoo-pruned-jet_mlp-*.pt"))) == 1
    _, acc = zb.train_zoo_model("jet_mlp", epochs=1)
    assert acc == pytest.approx(rows[0]["accuracy_float_dense"])
    zm = zb.prune_zoo_model("jet_mlp", 0.7, epochs=1, finetune_epochs=2)
    assert zm.cached_pruned and zm.metric_pruned == pytest.approx(rows[0]["accuracy_float"])
    assert zm.metric_dense == pytest.approx(rows[0]["accuracy_float_dense"])
    # files
    for name in ("zoo.json", "zoo.md", "zoo.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    assert json.loads((out / "zoo.json").read_text()) == rows
    md = (out / "zoo.md").read_text()
    assert "jet_mlp" in md and "Published PYNQ-Z2 results" in md and "not comparable" in md
    assert "hls4ml AD08" in md and "FINN CNV-W1A1" in md


def test_bench_zoo_not_fitting(tmp_cache):
    tiny = HwConfig(lanes=8, w_slots=64)
    rows = zb.bench_zoo(["jet_mlp", "sparsepixels"], lanes=(8,), sparsity=0.7, verify=1, out_dir=None,
                        backend="model", epochs=1, finetune_epochs=1, hw=tiny)
    r, skipped = rows
    assert r["error"] is None and r["fits"] is False
    assert "W_SLOTS=64" in r["fit_error"]
    assert r["cycles"] is None and r["latency_us"] is None and r["speedup"] is None
    assert r["verified_images"] is None                 # nothing to verify
    assert r["cycles_enlarged"] > 0                     # the estimate with raised capacities
    assert r["accuracy_int8"] is not None               # the integer reference runs without a program
    assert skipped["model"] == "sparsepixels" and skipped["lanes"] is None and "sparse-pixel" in skipped["note"]
    md = zb.render_markdown(rows, sparsity=0.7)
    assert "does not fit" in md and "W_SLOTS=64" in md and "skipped" in md


def test_published_constant():
    assert zb.PUBLISHED_SOURCE and len(zb.PUBLISHED) == 5
    lat = {p["design"]: p["latency_us"] for p in zb.PUBLISHED}
    assert lat["hls4ml ResNet RN07"] == 27300.0 and lat["FINN MLP W3A3"] == 17.5
    rows = [{"model": "dscnn_kws", "lanes": 8, "latency_us": 1750.0}]
    comp = {c["design"]: c for c in zb.comparison(rows)}
    assert comp["FINN MLP W3A3"]["ratio"] == pytest.approx(100.0)
    assert comp["hls4ml AD08"]["ratio"] is None


def test_verify_falls_back_to_the_program(tmp_cache, monkeypatch):
    from zeroskip.driver.errors import CompileError
    from zeroskip.host.conversion import Conversion

    def broken_export(self, *a, **k):
        raise CompileError("dense program needs 99 weight slots, overlay has W_SLOTS=64")

    monkeypatch.setattr(Conversion, "export", broken_export)
    (r,) = zb.bench_zoo(["jet_mlp"], lanes=(8,), verify=2, out_dir=None, backend="model", epochs=1,
                        finetune_epochs=1)
    assert r["verify_path"] == "program (bundle failed)" and "W_SLOTS=64" in r["bundle_error"]
    assert r["verified_images"] == 2 and r["mismatches"] == 0 and r["cycles_match"] is True
    assert "†" in zb.render_markdown([r], sparsity=0.7)


def test_prune_while_training(tmp_cache):
    """Masks in rounds, training under them, masks baked in: exact target sparsity, the
    dense model untouched, no mask left; the cache key follows sparsity and epochs."""
    import torch
    from zeroskip.host.training.prune import is_pruned, prunable_layers, weight_sparsity

    zm = zb.prune_zoo_model("jet_mlp", 0.5, epochs=1, finetune_epochs=3)
    assert not zm.cached_pruned and zm.finetune_epochs == 3
    assert weight_sparsity(zm.pruned) == pytest.approx(0.5, abs=1e-3) and weight_sparsity(zm.dense) < 0.01
    assert not any(is_pruned(m) for _, m in prunable_layers(zm.pruned))
    assert set(zm.pruned.state_dict()) == set(zm.dense.state_dict())
    again = zb.prune_zoo_model("jet_mlp", 0.5, epochs=1, finetune_epochs=3)
    assert again.cached_pruned
    for k, v in zm.pruned.state_dict().items():
        assert torch.equal(v, again.pruned.state_dict()[k]), k
    keys = {zb.prune_cache_key("jet_mlp", s, 0, 1, f) for s in (0.5, 0.7) for f in (1, 3)}
    assert len(keys) == 4
    one_shot = zb.prune_zoo_model("jet_mlp", 0.5, epochs=1, finetune_epochs=0, cache=False)
    assert weight_sparsity(one_shot.pruned) == pytest.approx(0.5, abs=1e-3)
    none = zb.prune_zoo_model("jet_mlp", None, epochs=1)
    assert none.pruned is none.dense and none.sparsity is None


def test_sparsity_map():
    assert zb.parse_sparsity("0.7") == 0.7
    m = zb.parse_sparsity("0.7,fc_autoencoder=0.9,jet_mlp=none")
    assert m == {"default": 0.7, "fc_autoencoder": 0.9, "jet_mlp": None}
    assert zb.model_sparsity(m, "fc_autoencoder") == 0.9 and zb.model_sparsity(m, "resnet8") == 0.7
    assert zb.model_sparsity(m, "jet_mlp") is None
    assert zb.model_sparsity({"resnet8": 0.5}, "lenet5") == zb.DEFAULT_SPARSITY
    with pytest.raises(ValueError):
        zb.parse_sparsity("1.2")
    assert "fc_autoencoder 0.9" in zb._sparsity_text(m)
