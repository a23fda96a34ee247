"""The zoo bench (zeroskip.host.bench.zoo): rows, verification on the golden-model
backend, the written files, and a model that does not fit reported as such."""

import json

import pytest

pytestmark = pytest.mark.ml

from zeroskip.driver.program import HwConfig  # noqa: E402
from zeroskip.host.bench import zoo as zb  # noqa: E402

REQUIRED = ("model", "lanes", "params", "nonzero", "fits", "fit_error", "macs_dense", "macs_sparse", "cycles",
            "latency_us", "mac_utilization", "speedup", "verified_images", "mismatches", "accuracy_float",
            "accuracy_int8", "agreement", "cycles_match")


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROSKIP_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_bench_zoo_small(tmp_cache):
    out = tmp_cache / "zoo"
    rows = zb.bench_zoo(["jet_mlp", "tinycnn"], lanes=(8,), sparsity=0.7, verify=2, out_dir=out, backend="model",
                        epochs=1)
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
        assert 0.0 <= r["agreement"] <= 1.0
    # the model's train/cache path: the second call loads the cached state_dict
    cached = list((tmp_cache / "cache" / "models").glob("zoo-jet_mlp-*.pt"))
    assert len(cached) == 1
    _, acc = zb.train_zoo_model("jet_mlp", epochs=1)
    assert acc == pytest.approx(rows[0]["accuracy_float"])
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
                        backend="model", epochs=1, hw=tiny)
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
    (r,) = zb.bench_zoo(["jet_mlp"], lanes=(8,), verify=2, out_dir=None, backend="model", epochs=1)
    assert r["verify_path"] == "program (bundle failed)" and "W_SLOTS=64" in r["bundle_error"]
    assert r["verified_images"] == 2 and r["mismatches"] == 0 and r["cycles_match"] is True
    assert "†" in zb.render_markdown([r], sparsity=0.7)
