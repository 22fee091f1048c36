"""The numpy forward pass of the global network: it agrees with Keras on saved models, refuses what it does not
implement, and never imports TensorFlow or Keras."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, subprocess_env

import forecast.models.pooled.numpy_net as global_numpy
from forecast.models.pooled.numpy_net import NumpyGlobalNet

N_SEQUENCE, N_STATIC = 4, 3


def saved_network(folder: Path, arch: str = "gru", members: int = 2, dropout: float = 0.1, lookback: int = 6,
                  horizon: int = 3, seed: int = 0, linear: bool = False):
    """Build a small global network, give every weight (biases too) a random value, save it; return (model, path)."""
    from forecast.models.network import save_model
    from forecast.models.pooled.net_config import GlobalNetConfig
    from forecast.models.pooled.network import build_global_network  # TensorFlow: only when a test needs it

    cfg = GlobalNetConfig(lookback=lookback, horizon=horizon, arch=arch, units=5, head_units=4, dropout=dropout, members=members,
                          linear=linear)
    model = build_global_network(cfg, N_SEQUENCE, N_STATIC)
    rng = np.random.default_rng(seed)
    # Keras starts biases at zero; random ones make a misplaced bias show
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    path = folder / f"{arch}_{members}.keras"
    save_model(model, path)
    return model, path


def random_inputs(rows: int, lookback: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    window = rng.normal(0, 2, (rows, lookback, N_SEQUENCE)).astype("float32")
    window[0, 0, 0], window[1, -1, 1] = 500.0, -500.0  # saturates gates, where a naive exp(-x) would overflow float32
    return window, rng.normal(0, 1, (rows, N_STATIC)).astype("float32")


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> Path:
    return saved_network(tmp_path_factory.mktemp("base"))[1]


@pytest.mark.parametrize(("arch", "members", "dropout", "linear"), [
    ("gru", 1, 0.1, False), ("gru", 3, 0.1, False), ("gru", 2, 0.0, False), ("lstm", 1, 0.1, False), ("lstm", 3, 0.1, False),
    ("gru", 3, 0.1, True), ("lstm", 2, 0.1, True)])  # True: the nested ridge beside the recurrent path
def test_numpy_forward_pass_matches_keras(tmp_path, monkeypatch, arch, members, dropout, linear):
    model, path = saved_network(tmp_path, arch, members, dropout, lookback=7, horizon=3, linear=linear)
    monkeypatch.setattr(global_numpy, "ROWS_PER_CHUNK", 16)  # 37 rows: two full chunks and a ragged one
    window, static = random_inputs(37, lookback=7)
    expected = np.asarray(model.predict_on_batch((window, static)))
    network = NumpyGlobalNet.from_keras_file(path)
    with np.errstate(all="raise"):  # saturated gates must not overflow
        got = network.predict(window, static)
    assert network.lookback == 7 and got.dtype == np.float32
    assert got.shape == expected.shape == (37, members, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert np.abs(got - got[:1]).max() > 0.1  # rows differ: the comparison is not between constants


def rewrite_config(source: Path, target: Path, change: Callable[[list[dict]], None]) -> Path:
    """Copy a .keras archive with the layer list of its config.json edited by ``change`` (weights untouched)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.namelist():
            data = old.read(item)
            if item == "config.json":
                config = json.loads(data)
                change(config["config"]["layers"])
                data = json.dumps(config).encode()
            new.writestr(item, data)
    return target


def named(layers: list[dict], name: str) -> dict:
    return next(layer for layer in layers if layer["config"]["name"] == name)


def setting(name: str, key: str, value) -> Callable[[list[dict]], None]:
    return lambda layers: named(layers, name)["config"].__setitem__(key, value)


def swap_join_inputs(layers: list[dict]) -> None:
    named(layers, "join_1")["inbound_nodes"][0]["args"][0].reverse()


def replace_dropout(layers: list[dict]) -> None:
    named(layers, "dropout_0")["class_name"] = "GaussianNoise"  # identity at inference too, but not one this module knows


def add_dense(layers: list[dict]) -> None:
    extra = json.loads(json.dumps(named(layers, "hidden_0")))
    extra["config"]["name"] = extra["name"] = "squash_0"
    layers.append(extra)


@pytest.mark.parametrize(("change", "message"), [
    (setting("gru_0", "activation", "relu"), "'gru_0' has activation='relu'"),
    (setting("gru_1", "recurrent_activation", "hard_sigmoid"), "'gru_1' has recurrent_activation='hard_sigmoid'"),
    (setting("gru_0", "reset_after", False), "'gru_0' has reset_after=False"),
    (setting("gru_1", "go_backwards", True), "'gru_1' has go_backwards=True"),
    (setting("hidden_1", "activation", "tanh"), "'hidden_1' has activation='tanh'"),
    (setting("head_0", "activation", "relu"), "'head_0' has activation='relu'"),
    (replace_dropout, "'dropout_0' \\(GaussianNoise\\) is not one"),
    (add_dense, "'squash_0' \\(Dense\\) is not one"),
    (swap_join_inputs, "'join_1' must concatenate"),
])
def test_a_layer_the_numpy_pass_does_not_implement_is_refused_by_name(base_model, tmp_path, change, message):
    unchanged = rewrite_config(base_model, tmp_path / "same.keras", lambda layers: None)
    NumpyGlobalNet.from_keras_file(unchanged)  # the rewriting alone breaks nothing
    with pytest.raises(ValueError, match=message):
        NumpyGlobalNet.from_keras_file(rewrite_config(base_model, tmp_path / "changed.keras", change))


def test_inputs_of_the_wrong_shape_are_refused(base_model):
    network = NumpyGlobalNet.from_keras_file(base_model)
    window, static = random_inputs(5, lookback=6)
    assert network.predict(window, static).shape == (5, 2, 3)
    with pytest.raises(ValueError, match="expected window"):
        network.predict(window[:, 1:], static)  # a lookback the network was not trained on
    with pytest.raises(ValueError, match="expected window"):
        network.predict(window, static[:, :2])


def test_predicting_imports_neither_tensorflow_nor_keras(base_model):
    probe = (
        "import sys, numpy as np\n"
        "from forecast.models.pooled.numpy_net import NumpyGlobalNet\n"
        f"network = NumpyGlobalNet.from_keras_file({str(base_model)!r})\n"
        f"out = network.predict(np.ones((4, 6, {N_SEQUENCE}), np.float32), np.ones((4, {N_STATIC}), np.float32))\n"
        "assert out.shape == (4, 2, 3) and np.isfinite(out).all(), out.shape\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'tensorflow', 'keras', 'tf_keras'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_forward_pass_runs_blas_on_one_thread_and_gives_its_threads_back(base_model, monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads() -> set[int]:
        return {lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"}

    before = blas_threads()
    if not before:
        pytest.skip("no BLAS library that threadpoolctl can see")
    network = NumpyGlobalNet.from_keras_file(base_model)
    member = type(network.members[0])
    forecast, seen = member.forecast, []
    monkeypatch.setattr(member, "forecast", lambda self, steps, static: (seen.append(blas_threads()), forecast(self, steps, static))[1])
    window, static = random_inputs(5, lookback=6)
    network.predict(window, static)
    assert seen and all(threads == {1} for threads in seen)  # small products: BLAS threads only wait on each other
    assert blas_threads() == before
