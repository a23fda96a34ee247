"""The board notebook (``overlay/zeroskip_board.ipynb``) executes top to bottom, as Jupyter
runs it, on the simulated overlay and on the golden model, against a bundle exported
here; its own bit-exact checks must print zero mismatches. Outputs are kept out of git."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

import npref  # noqa: E402
from zeroskip.driver.program import HwConfig  # noqa: E402
from zeroskip.host.compiler.export import export_bundle  # noqa: E402
from zeroskip.host.quant.randnet import random_input, random_qmodel  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "overlay" / "zeroskip_board.ipynb"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    rng = np.random.default_rng(21)
    model = random_qmodel(rng, input_shape=(1, 10, 10), n_conv=2, sparsity=0.6)
    x = random_input(rng, model, 40)
    out = tmp_path_factory.mktemp("nb") / "bundle"
    labels = npref.forward(model, x).argmax(1)
    return export_bundle(out, model, HwConfig(lanes=8), x, npref.forward(model, x), labels=labels)


def _text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                parts.append(o["text"])
            elif o.get("output_type") == "error":
                parts.append(f"{o['ename']}: {o['evalue']}")
    return "".join(parts)


def test_notebook_is_stored_without_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c.get("execution_count") is None for c in code)


@pytest.mark.parametrize("backend", [pytest.param("sim", marks=pytest.mark.rtl), "model"])
def test_notebook_runs_bit_exact(bundle, backend, tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROSKIP_BUNDLE", str(bundle))
    monkeypatch.setenv("ZEROSKIP_BACKEND", backend)
    monkeypatch.setenv("ZEROSKIP_OVERLAY", str(tmp_path / "no-overlay" / "zeroskip.bit"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()                     # raises CellExecutionError if any cell fails
    text = _text(nb)
    assert f"backend {backend}" in text
    m = re.search(r"(\d+) images, mismatches vs the PyTorch integer reference: (\d+)", text)
    assert m and (int(m.group(1)), int(m.group(2))) == (40, 0), text[-2000:]
    m = re.search(r"engine: (\d+) cycles per image", text)
    assert m and int(m.group(1)) > 0
    assert re.search(r"dense mode \(zeros not skipped\): \d+ cycles per image, mismatches 0", text), text[-2000:]
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 1, "the predictions and latency figure is drawn"
