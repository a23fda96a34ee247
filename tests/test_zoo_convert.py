"""Every zoo model through ``convert`` as a user's model goes: it converts (untrained
weights, pruned one-shot to 70 %), fits the default overlay (or, the FC autoencoder,
reports which capacity it exceeds), and one image runs bit-exact with cycles equal to
the prediction on the golden model and on the RTL simulation."""

import numpy as np
import pytest
import torch
from zeroskip.driver import HwConfig, Model

from zeroskip.host import convert
from zeroskip.host.zoo import ZOO, get

pytestmark = [pytest.mark.ml, pytest.mark.rtl, pytest.mark.xdist_group("zoo-convert")]

FITS = ["tinycnn", "lenet5", "dscnn_kws", "resnet8", "jet_mlp"]


def _conv(name):
    e = get(name)
    torch.manual_seed(0)
    model = e.factory().eval()
    x_train, _, x_test, _ = e.dataset(64, 16, 0)
    return convert(model, x_train, sparsity=0.7), x_test


def test_every_zoo_model_is_covered():
    assert set(FITS) | {"fc_autoencoder", "sparsepixels"} == set(ZOO)


@pytest.mark.parametrize("name", FITS)
def test_zoo_model_converts_fits_and_runs_bit_exact_on_sim(name, tmp_path):
    conv, x = _conv(name)
    assert conv.fits, conv.fit_error
    assert conv.import_rel_error < 1e-4
    path = conv.export(tmp_path / name, test_inputs=x[:1])
    want = conv.predict_int(x[:1])
    for backend in ("model", "sim"):
        with Model(path, backend=backend, quiet=True) as m:
            got = m.predict_int(m.quantize(x[:1]))
            assert m.last.cycles_per_image == conv.cycles(), backend
        np.testing.assert_array_equal(got, want, err_msg=backend)


def test_autoencoder_reports_the_capacity_it_exceeds():
    conv, _ = _conv("fc_autoencoder")
    assert not conv.fits and "W_SLOTS" in conv.fit_error and str(HwConfig().w_slots) in conv.fit_error
    assert "does not fit" in conv.report()
