"""The benchmark harness's own pieces, on tiny sizes (the suite never runs the benchmark)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def harness() -> tuple[ModuleType, ModuleType]:
    return load("run"), load("worker")


def test_worker_measures_our_tasks_on_tiny_data(harness, tmp_path):
    run, worker = harness
    sizes = run.Sizes(300, 50, 5, 5, 2, 50, 1, fit_rows=200, forest_fit_rows=100)
    path = tmp_path / "data.db"
    run.build_data(path, sizes)
    assert worker.run("ours", "setup", str(path), 0)["seconds"] > 0
    mode = worker.connect("ours", str(path)).execute("SELECT sqml_binding_mode()").fetchone()[0]
    native = mode == "native"
    for task in (
        "predict_json_lr",
        "predict_positional_lr",
        "predict_json_rf",
        "batch_lr",
        "callable_json_lr",
        "callable_positional_lr",
        "noop_json",
        "noop20",
        "noop_batch",
        "model_predict_scan_rf",
        "noop20_stdlib",
        *(["table_rf", "noop1_native"] if native else []),
    ):
        impl = "floor" if task.startswith("noop_") or task == "noop20" else "ours"
        result = worker.run(impl, task, str(path), 20)
        assert result["rows"] == 20 and result["seconds"] > 0, task
    if native:  # sqml_predict_table and the reader exist on the native binding only
        assert worker.run("ours", "table_lr", str(path), 0)["rows"] == 300
        assert worker.run("ours", "native_read", str(path), 0)["rows"] == 300
    trained = worker.run("ours", "train_lr", str(path), 0)
    assert trained["rows"] == 300


def test_report_has_every_target_with_ratios(harness):
    run, _worker = harness
    sizes = run.QUICK
    results = run.Results()
    for m in run.measurements(sizes):
        for value in (2.0, 4.0, 3.0):
            results.add(m, {"seconds": value / 1e6, "rows": 1, "peak_rss_mib": 100.0 * value})
    text = run.report(results, sizes, "header")
    for needle in (
        "1. `sqml_predict(exp, json_object(20 cols))`",
        "random forest",
        "2. `sqml_predict(exp, f0, ..., f19)`",
        "3. `sqml_predict_batch`",
        "peak RSS",
        "3.00 µs/row (2.00–4.00)",
        "Binding overhead",
        "`sqml_predict_table`, logistic regression",
        "native reader",
    ):
        assert needle in text, needle


def test_the_embedding_benchmark_on_tiny_sizes() -> None:
    embeddings = load("embeddings")
    assert len(set(embeddings.sentences(50))) > 25  # mostly distinct sentences
    rows = dict(embeddings.embedding_throughput(30, 1) + embeddings.knn(60, 3))
    assert rows["sqml_embed / direct throughput"].endswith("x")
    assert rows["same neighbours either way"] == "yes"


def test_threads_benchmark_worker_on_tiny_data(tmp_path, capsys):
    threads = load("threads")
    path = tmp_path / "threads.db"
    threads.make_data(path, 200)
    options = '{"hyperparams": {"max_iter": 3}}'
    threads.worker({"db": str(path), "experiment": "e", "predictions": 5, "options": options})
    measured = json.loads(capsys.readouterr().out)
    assert measured["fit_s"] > 0 and measured["threads"] == 1
    assert 0 < measured["predict_ms"] <= measured["predict_p90_ms"]
    assert set(threads.settings()) >= {"sqlite-ml's choice", "OMP_NUM_THREADS=1 by hand"}
