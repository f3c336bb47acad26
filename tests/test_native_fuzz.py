"""The native loader, scorer and JSON reader fuzzed under AddressSanitizer and
UndefinedBehaviorSanitizer (tests/native_fuzz.c, built here from csrc/): damaged forms of
every model family and damaged JSON rows, with no memory error and no undefined
behaviour. The Python extension's own fuzz test is in test_native_format.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import Db

ROOT = Path(__file__).resolve().parent.parent
CORE = ["sha256.c", "model_load.c", "model_score.c", "json_row.c"]
RUNS = [
    ("classification", "logistic_regression", "dataset_iris", {}),
    ("classification", "random_forest", "dataset_iris", {"n_estimators": 3}),
    ("classification", "ada_boost", "dataset_iris", {"n_estimators": 3}),
    ("classification", "gradient_boosting", "dataset_iris", {"n_estimators": 3}),
    ("regression", "bagging", "dataset_diabetes", {"n_estimators": 3}),
    ("regression", "ada_boost", "dataset_diabetes", {"n_estimators": 3}),
    ("regression", "hist_gradient_boosting", "dataset_diabetes", {"max_iter": 3}),
    ("classification", "xgboost", "dataset_iris", {"n_estimators": 3}),
    ("classification", "lightgbm", "dataset_iris", {"n_estimators": 3}),
    ("clustering", "kmeans", "dataset_iris", {"n_clusters": 3, "n_init": 1}),
]


@pytest.fixture
def harness(tmp_path: Path) -> Path:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler")
    program = tmp_path / "native_fuzz"
    built = subprocess.run(
        [
            compiler,
            "-g",
            "-O1",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
            f"-I{ROOT / 'csrc'}",
            str(ROOT / "tests" / "native_fuzz.c"),
            *(str(ROOT / "csrc" / name) for name in CORE),
            "-lm",
            "-o",
            str(program),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        pytest.skip(f"cannot build with the sanitizers here: {built.stderr[:300]}")
    return program


def test_damaged_forms_and_rows_never_reach_memory_they_should_not(
    db: Db, harness: Path, tmp_path: Path
) -> None:
    db.load("iris")
    db.load("diabetes")
    forms = []
    for kind, algorithm, table, hyperparams in RUNS:
        target = None if kind == "clustering" else "target"
        result = db.train_with(algorithm + kind, kind, algorithm, table, target,
                               {"hyperparams": hyperparams})  # fmt: skip
        blob = db.value("SELECT native_model FROM sqml_models WHERE id = ?", (result["model_id"],))
        path = tmp_path / f"{algorithm}_{kind}.form"
        path.write_bytes(blob)
        forms.append(str(path))
    result = subprocess.run(
        [str(harness), "7", "1500", *forms],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    accepted, refused, read, rejected = map(int, result.stdout.split())
    assert refused > accepted > 0
    assert read > 0 and rejected > 0
    assert json.dumps(result.stderr) == '""'
