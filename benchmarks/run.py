"""Benchmark sqlite-ml against sqlite-ml 0.1.2 and against the floors of the work itself.

    python benchmarks/run.py            # the full run (about 10 minutes on 2 cores)
    python benchmarks/run.py --quick    # small sizes, one round: a smoke test of the harness

Builds synthetic data (20 REAL features, a 0/1 label) once under benchmarks/.data,
creates benchmarks/.venv-0.1.2 with sqlite-ml 0.1.2 and scikit-learn 1.5.2 from PyPI on
first use, then runs every measurement in its own process, the two implementations
interleaved round after round, and writes a markdown table of medians, min-max and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
WORKER = HERE / "worker.py"
FEATURES = [f"f{i}" for i in range(20)]
REFERENCE_PACKAGES = ["sqlite-ml==0.1.2", "scikit-learn==1.5.2"]


@dataclass(frozen=True)
class Sizes:
    train_rows: int
    predict_rows: int  # rows our per-row predictions run over
    reference_rows: int  # rows 0.1.2's per-row logistic regression runs over (ms per row)
    forest_rows: int  # rows per-row random forest predictions run over, ours
    reference_forest_rows: int
    batch_rows: int
    rounds: int
    fit_rows: int = 20_000  # rows the logistic regression for predictions is trained on
    forest_fit_rows: int = 5_000  # and the random forest (100 trees)


FULL = Sizes(1_000_000, 20_000, 300, 1_000, 20, 100_000, 3)
QUICK = Sizes(20_000, 2_000, 30, 100, 3, 5_000, 1)


@dataclass(frozen=True)
class Measurement:
    key: str
    impl: str  # ours, ref or floor
    task: str
    rows: int
    env: tuple[tuple[str, str], ...] = ()


def measurements(sizes: Sizes) -> list[Measurement]:
    s = sizes
    stdlib = (("SQLITE_ML_BINDING", "stdlib"),)
    return [
        Measurement("json_lr/ref", "ref", "predict_json_lr", s.reference_rows),
        Measurement("json_lr/ours", "ours", "predict_json_lr", s.predict_rows),
        Measurement("json_lr/ours-stdlib", "ours", "predict_json_lr", s.predict_rows, stdlib),
        Measurement("json_lr/callable", "ours", "callable_json_lr", s.predict_rows),
        Measurement("json_lr/array", "ours", "predict_array_lr", s.predict_rows),
        Measurement("floor/noop_json", "floor", "noop_json", s.predict_rows),
        Measurement("json_rf/ref", "ref", "predict_json_rf", s.reference_forest_rows),
        Measurement("json_rf/ours", "ours", "predict_json_rf", s.forest_rows),
        Measurement("floor/sklearn_row_rf", "floor", "sklearn_row_rf", s.reference_forest_rows),
        Measurement("floor/sklearn_row_lr", "floor", "sklearn_row_lr", s.reference_rows),
        Measurement("positional_lr/ours", "ours", "predict_positional_lr", s.predict_rows),
        Measurement(
            "positional_lr/ours-stdlib", "ours", "predict_positional_lr", s.predict_rows, stdlib
        ),
        Measurement("positional_lr/callable", "ours", "callable_positional_lr", s.predict_rows),
        Measurement("floor/noop20", "floor", "noop20", s.predict_rows),
        Measurement("batch_lr/ref", "ref", "batch_lr", s.batch_rows),
        Measurement("batch_lr/ours", "ours", "batch_lr", s.batch_rows),
        Measurement("batch_lr/ours-arrays", "ours", "batch_array_lr", s.batch_rows),
        Measurement("floor/noop_batch", "floor", "noop_batch", s.batch_rows),
        Measurement("train_lr/ref", "ref", "train_lr", s.train_rows),
        Measurement("train_lr/ours", "ours", "train_lr", s.train_rows),
        Measurement("floor/fromiter", "floor", "fromiter", s.train_rows),
        Measurement("floor/bare_scan", "floor", "bare_scan", s.train_rows),
        Measurement("table_lr/ours", "ours", "table_lr", s.train_rows),
        Measurement("table_rf/ours", "ours", "table_rf", s.batch_rows),
        Measurement("floor/model_predict_scan_rf", "ours", "model_predict_scan_rf", s.batch_rows),
        Measurement("read/native", "ours", "native_read", s.train_rows),
        Measurement("noop1/stdlib", "ours", "noop1_stdlib", s.predict_rows),
        Measurement("noop1/native", "ours", "noop1_native", s.predict_rows),
        Measurement("noop20/stdlib", "ours", "noop20_stdlib", s.predict_rows),
        Measurement("noop20/native", "ours", "noop20_native", s.predict_rows),
    ]


def build_data(path: Path, sizes: Sizes) -> None:
    """Deterministic synthetic data: the same file for every run with the same sizes."""
    if path.exists():
        return
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    rng = np.random.default_rng(2024)
    weights = rng.normal(size=20)
    conn = sqlite3.connect(tmp)
    columns = ", ".join(f"{name} REAL" for name in FEATURES)
    placeholders = ", ".join("?" for _ in range(21))

    def table(name: str, rows: int) -> None:
        conn.execute(f"CREATE TABLE {name} ({columns}, label INTEGER)")
        for start in range(0, rows, 100_000):
            x = rng.normal(size=(min(100_000, rows - start), 20))
            label = (x @ weights + rng.normal(size=len(x)) > 0).astype(int)
            conn.executemany(
                f"INSERT INTO {name} VALUES ({placeholders})",  # noqa: S608
                [(*row, int(y)) for row, y in zip(x.tolist(), label.tolist(), strict=True)],
            )
        conn.commit()

    table("train_data", sizes.train_rows)
    table("predict_rows", max(sizes.batch_rows, sizes.predict_rows))
    table("fit_lr", sizes.fit_rows)
    table("fit_rf", sizes.forest_fit_rows)
    conn.close()
    tmp.rename(path)


def reference_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with {' '.join(REFERENCE_PACKAGES)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                *REFERENCE_PACKAGES,
            ],
            check=True,
        )
    return python


def run_one(python: Path, m: Measurement, db: Path) -> dict[str, Any]:
    env = {**os.environ, **dict(m.env)}
    if m.impl != "ours":
        env.pop("SQLITE_ML_BINDING", None)
    completed = subprocess.run(
        [str(python), str(WORKER), m.impl, m.task, str(db), str(m.rows)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=HERE,  # not the checkout: the reference venv must not import our src/
    )
    if completed.returncode != 0:
        raise SystemExit(f"{m.key} failed:\n{completed.stdout}\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


class Results:
    def __init__(self) -> None:
        self.per_row: dict[str, list[float]] = {}  # µs per row (seconds for training)
        self.rss: dict[str, list[float]] = {}
        self.modes: dict[str, set[str]] = {}  # sqml_binding_mode() of "ours" processes

    def add(self, m: Measurement, result: dict[str, Any]) -> None:
        if "mode" in result:
            self.modes.setdefault(m.key, set()).add(str(result["mode"]))
        if m.task in ("train_lr", "fromiter", "bare_scan", "native_read"):
            value = result["seconds"]
        else:
            value = result["seconds"] / max(result["rows"], 1) * 1e6
        self.per_row.setdefault(m.key, []).append(value)
        self.rss.setdefault(m.key, []).append(result["peak_rss_mib"])

    def median(self, key: str) -> float:
        return statistics.median(self.per_row[key])

    def cell(self, key: str, unit: str) -> str:
        values = self.per_row[key]
        med = statistics.median(values)
        if len(values) == 1:
            return f"{fmt(med)} {unit}"
        return f"{fmt(med)} {unit} ({fmt(min(values))}–{fmt(max(values))})"

    def rss_cell(self, key: str) -> str:
        values = self.rss[key]
        return f"{statistics.median(values):,.0f} MiB ({min(values):,.0f}–{max(values):,.0f})"


def fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(r: Results, sizes: Sizes, header: str) -> str:
    m = r.median
    lines = [header, ""]
    lines += [
        "| target | sqlite-ml 0.1.2 | this version | floor | ours ÷ 0.1.2 | ours ÷ floor | goal |",
        "|---|---|---|---|---|---|---|",
    ]
    us = "µs/row"

    def row(name: str, ref: str | None, ours: str, floor: str | None, goal: str, ok: bool) -> None:
        ref_cell = r.cell(ref, us) if ref else "–"
        floor_cell = f"{r.cell(floor, us)} ({floor.split('/')[1]})" if floor else "–"
        vs_ref = f"{m(ours) / m(ref):.3f}" if ref else "–"
        vs_floor = f"{m(ours) / m(floor):.2f}" if floor else "–"
        lines.append(
            f"| {name} | {ref_cell} | {r.cell(ours, us)} | {floor_cell} | {vs_ref} | "
            f"{vs_floor} | {goal}: {verdict(ok)} |"
        )

    row(
        "1. `sqml_predict(exp, json_object(20 cols))`, logistic regression",
        "json_lr/ref",
        "json_lr/ours",
        "floor/noop_json",
        "≥ 50× 0.1.2 and ≤ 2.5× floor",
        m("json_lr/ours") * 50 <= m("json_lr/ref")
        and m("json_lr/ours") <= 2.5 * m("floor/noop_json"),
    )
    row(
        "1. the same, random forest (100 trees)",
        "json_rf/ref",
        "json_rf/ours",
        "floor/sklearn_row_rf",
        "≥ 20× faster than scikit-learn's one-row predict",
        m("json_rf/ours") * 20 <= m("floor/sklearn_row_rf"),
    )
    row(
        "2. `sqml_predict(exp, f0, ..., f19)`, logistic regression",
        None,
        "positional_lr/ours",
        "floor/noop20",
        "≤ 3× floor",
        m("positional_lr/ours") <= 3 * m("floor/noop20"),
    )
    row(
        f"3. `sqml_predict_batch` over {sizes.batch_rows:,} rows (json_object)",
        "batch_lr/ref",
        "batch_lr/ours",
        "floor/noop_batch",
        "≤ 1.5× floor",
        m("batch_lr/ours") <= 1.5 * m("floor/noop_batch"),
    )
    lines.append("")
    lines.append(
        "| training, logistic regression | sqlite-ml 0.1.2 | this version | ours ÷ 0.1.2 | goal |"
    )
    lines.append("|---|---|---|---|---|")
    lines.append(
        f"| `sqml_train`, {sizes.train_rows:,} rows × 20: time | {r.cell('train_lr/ref', 's')} | "
        f"{r.cell('train_lr/ours', 's')} | {m('train_lr/ours') / m('train_lr/ref'):.2f} | "
        f"≤ 0.5: {verdict(m('train_lr/ours') <= 0.5 * m('train_lr/ref'))} |"
    )
    rss_ref = statistics.median(r.rss["train_lr/ref"])
    rss_ours = statistics.median(r.rss["train_lr/ours"])
    lines.append(
        f"| the same: peak RSS of the process | {r.rss_cell('train_lr/ref')} | "
        f"{r.rss_cell('train_lr/ours')} | {rss_ours / rss_ref:.2f} | "
        f"≤ 0.35: {verdict(rss_ours <= 0.35 * rss_ref)} |"
    )
    lines += [
        "",
        "| native layer (issue 6) | this version | floor | ours ÷ floor | goal |",
        "|---|---|---|---|---|",
    ]

    def native_row(name: str, ours: str, unit: str, floor: str, goal: str, ok: bool) -> None:
        floor_cell = r.cell(floor, unit) if floor in r.per_row else "–"
        ratio = f"{m(ours) / m(floor):.2f}" if floor in r.per_row else "–"
        lines.append(
            f"| {name} | {r.cell(ours, unit)} | {floor_cell} | {ratio} | {goal}: {verdict(ok)} |"
        )

    native_row(
        f"`sqml_predict_table`, logistic regression, {sizes.train_rows:,} rows",
        "table_lr/ours",
        us,
        "",
        "≤ 0.7 µs/row",
        m("table_lr/ours") <= 0.7,
    )
    native_row(
        f"`sqml_predict_table`, random forest, {sizes.batch_rows:,} rows (vs the model's own"
        " predict + a bare scan)",
        "table_rf/ours",
        us,
        "floor/model_predict_scan_rf",
        "≤ 1.3× floor",
        m("table_rf/ours") <= 1.3 * m("floor/model_predict_scan_rf"),
    )
    native_row(
        f"native reader, {sizes.train_rows:,} × 21 into float64 (vs the bare scan)",
        "read/native",
        "s",
        "floor/bare_scan",
        "≤ 2× floor",
        m("read/native") <= 2 * m("floor/bare_scan"),
    )
    for width in (1, 20):
        native_row(
            f"no-op function, {width} REAL argument(s): native binding (vs stdlib create_function)",
            f"noop{width}/native",
            us,
            f"noop{width}/stdlib",
            "≤ 1.5× the stdlib's",
            m(f"noop{width}/native") <= 1.5 * m(f"noop{width}/stdlib"),
        )
    lines += ["", "Details and floors (medians, min–max over the rounds):", ""]
    lines += ["| measurement | result |", "|---|---|"]
    details = [
        ("our Python callable alone, JSON object, logistic regression", "json_lr/callable", us),
        (
            "`sqml_predict` JSON object with the stdlib binding (generic errors)",
            "json_lr/ours-stdlib",
            us,
        ),
        ("`sqml_predict(exp, json_array(...))`, logistic regression", "json_lr/array", us),
        (
            "our Python callable alone, positional, logistic regression",
            "positional_lr/callable",
            us,
        ),
        ("positional with the stdlib binding", "positional_lr/ours-stdlib", us),
        ("`sqml_predict_batch` of json_array rows", "batch_lr/ours-arrays", us),
        ("floor: no-op UDF on json_object(20 cols)", "floor/noop_json", us),
        ("floor: no-op UDF with 20 REAL arguments", "floor/noop20", us),
        ("floor: noop(json_group_array(json_object(...)))", "floor/noop_batch", us),
        (
            "floor: scikit-learn one-row predict, logistic regression pipeline",
            "floor/sklearn_row_lr",
            us,
        ),
        ("floor: scikit-learn one-row predict, random forest pipeline", "floor/sklearn_row_rf", us),
        (
            f"floor: numpy.fromiter over the cursor, {sizes.train_rows:,} × 21",
            "floor/fromiter",
            "s",
        ),
        (
            f"floor: bare scan (max of every column), {sizes.train_rows:,} rows",
            "floor/bare_scan",
            "s",
        ),
    ]
    for label, key, unit in details:
        lines.append(f"| {label} | {r.cell(key, unit)} |")
    ctypes_json = m("json_lr/ours") - m("json_lr/ours-stdlib")
    ctypes_pos = m("positional_lr/ours") - m("positional_lr/ours-stdlib")
    lines += [
        "",
        f"Binding overhead of sqml_predict (this version's binding − the stdlib binding, same"
        " callable): "
        f"{fmt(ctypes_json)} µs/row with one JSON argument, {fmt(ctypes_pos)} µs/row with 21 "
        "arguments.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--rounds", type=int, help="rounds (each measurement once per round)")
    parser.add_argument("--out", type=Path, help="markdown file to write (default: print only)")
    parser.add_argument("--venv", type=Path, default=HERE / ".venv-0.1.2")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = Sizes(**{**sizes.__dict__, "rounds": args.rounds})
    data_dir = HERE / ".data"
    data_dir.mkdir(exist_ok=True)
    shape = (
        sizes.train_rows,
        max(sizes.batch_rows, sizes.predict_rows),
        sizes.fit_rows,
        sizes.forest_fit_rows,
    )
    template = data_dir / ("data-" + "-".join(map(str, shape)) + ".db")
    started = time.perf_counter()
    build_data(template, sizes)
    print(f"data ready ({time.perf_counter() - started:.0f} s)", flush=True)
    ref_python = reference_python(args.venv)
    ours_python = Path(sys.executable)
    databases = {}
    for impl in ("ours", "ref", "floor"):
        databases[impl] = data_dir / f"run-{impl}.db"
        shutil.copyfile(template, databases[impl])
    python_for = {"ours": ours_python, "floor": ours_python, "ref": ref_python}
    load_before = load()
    for impl in ("ref", "ours"):
        result = run_one(python_for[impl], Measurement("setup", impl, "setup", 0), databases[impl])
        print(f"{impl}: models trained ({result['seconds']:.1f} s)", flush=True)
    results = Results()
    plan = measurements(sizes)
    for round_number in range(sizes.rounds):
        for m in plan:  # 0.1.2 and ours alternate within each target, round after round
            result = run_one(python_for[m.impl], m, databases[m.impl])
            results.add(m, result)
            print(
                f"round {round_number + 1}: {m.key}: {results.per_row[m.key][-1]:.3g}", flush=True
            )
    modes = sorted({mode for found in results.modes.values() for mode in found})
    forced = sorted(
        {mode for key, found in results.modes.items() if key.endswith("-stdlib") for mode in found}
    )
    header = (
        f"Machine: {machine()}. Load average {load_before} before the run, {load()} after. "
        f'Binding of "this version" (`sqml_binding_mode()` in each measuring process): '
        f"{', '.join(sorted(set(modes) - set(forced))) or '–'}"
        f"{'; the -stdlib rows forced ' + ', '.join(forced) if forced else ''}. "
        f"{sizes.rounds} round(s), {time.perf_counter() - started:.0f} s in all; "
        f"sqlite-ml 0.1.2 ran with {' and '.join(REFERENCE_PACKAGES[1:])} in {args.venv.name}."
    )
    text = report(results, sizes, header)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
