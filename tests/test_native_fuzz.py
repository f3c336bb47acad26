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


# Tree models of every walk: float32 forests (<=), XGBoost (float32, <), LightGBM and hist
# gradient boosting (float64), with 13 trees (a full group of 8 and a padded one).
WALK_RUNS = [
    ("classification", "random_forest", "dataset_iris", {"n_estimators": 13}, 8.0),
    ("regression", "extra_trees", "dataset_diabetes", {"n_estimators": 13}, 0.2),
    ("classification", "xgboost", "dataset_iris", {"n_estimators": 13}, 8.0),
    ("regression", "lightgbm", "dataset_diabetes", {"n_estimators": 13}, 0.2),
    ("classification", "hist_gradient_boosting", "dataset_iris", {"max_iter": 13}, 8.0),
]


def test_the_portable_walks_predict_what_the_x86_walks_do(db: Db, tmp_path: Path) -> None:
    """Other targets than x86-64 (or a build with SQML_PORTABLE_WALK) walk trees with C
    selects instead of the asm steps (csrc/model_score.c): both builds of the scorer must
    give the same predictions and probabilities, bit for bit, rows with a NaN included."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler")
    programs = []
    for name, flags in (("x86", []), ("portable", ["-DSQML_PORTABLE_WALK"])):
        program = tmp_path / f"walks_{name}"
        sources = [str(ROOT / "tests" / "native_walks.c")]
        sources += [str(ROOT / "csrc" / source) for source in CORE]
        command = [compiler, "-O2", *flags, f"-I{ROOT / 'csrc'}", *sources, "-lm"]
        built = subprocess.run(
            [*command, "-o", str(program)], capture_output=True, text=True, check=False
        )
        assert built.returncode == 0, built.stderr[-2000:]
        programs.append(program)
    db.load("iris")
    db.load("diabetes")
    forms = []
    for kind, algorithm, table, hyperparams, scale in WALK_RUNS:
        result = db.train_with(algorithm + kind, kind, algorithm, table, "target",
                               {"hyperparams": hyperparams})  # fmt: skip
        blob = db.value("SELECT native_model FROM sqml_models WHERE id = ?", (result["model_id"],))
        path = tmp_path / f"{algorithm}_{kind}.form"
        path.write_bytes(blob)
        forms.append(f"{path}:{scale}")
    outputs = [
        subprocess.run(
            [str(program), "5", "400", *forms],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        for program in programs
    ]
    assert outputs[0] == outputs[1]
    lines = outputs[0].splitlines()
    assert len(lines) == 400 * len(WALK_RUNS)
    # the rows reach many leaves: more than a handful of distinct predictions per model
    for index in range(len(WALK_RUNS)):
        values = {line.split(" ", 1)[1] for line in lines if line.startswith(f"{index + 3} ")}
        assert len(values) > 5, WALK_RUNS[index]
