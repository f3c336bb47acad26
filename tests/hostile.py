"""A hostile-database corpus: real model blobs edited the way an attacker would edit them.

Each case trains a small real model through SQL, then rewrites the stored blob (and the
digest recorded beside it, which the attacker controls too): an array inside the skops
archive, the schema, the XGBoost bytes or the LightGBM text, or the zip itself. The test
runs every case in a child process, so a crash or a hang fails a test instead of killing
the run (tests/test_hostile_models.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import sqlite3
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .helpers import IRIS_FEATURES


class SkopsArchive:
    """A skops archive opened for editing: its members and its schema as JSON data."""

    def __init__(self, blob: bytes):
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            self.members = {name: archive.read(name) for name in archive.namelist()}
        self.schema = json.loads(self.members["schema.json"])

    def nodes(self, class_name: str) -> list[dict[str, Any]]:
        """Every schema node of class ``class_name``, in document order."""
        found: list[dict[str, Any]] = []
        pending: list[Any] = [self.schema]
        while pending:
            node = pending.pop(0)
            if isinstance(node, dict):
                if node.get("__class__") == class_name:
                    found.append(node)
                pending.extend(node.values())
            elif isinstance(node, list):
                pending.extend(node)
        return found

    def array(self, node: dict[str, Any]) -> np.ndarray:
        return np.load(io.BytesIO(self.members[node["file"]]), allow_pickle=False)

    def set_array(self, node: dict[str, Any], array: np.ndarray) -> None:
        out = io.BytesIO()
        np.save(out, array, allow_pickle=False)
        self.members[node["file"]] = out.getvalue()

    def edit_array(self, node: dict[str, Any], edit: Callable[[np.ndarray], Any]) -> None:
        array = self.array(node).copy()
        result = edit(array)
        self.set_array(node, array if result is None else result)

    def blob(self) -> bytes:
        self.members["schema.json"] = json.dumps(self.schema).encode()
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
            for name, data in self.members.items():
                archive.writestr(name, data)
        return out.getvalue()


def attribute(node: dict[str, Any], key: str) -> dict[str, Any]:
    """An object node's attribute node (its state is a dict node)."""
    return node["content"]["content"][key]


def tree_nodes(archive: SkopsArchive, which: int = 0) -> dict[str, Any]:
    """The node array of the ``which``-th scikit-learn tree."""
    return archive.nodes("Tree")[which]["content"]["content"]["nodes"]


def hgb_nodes(archive: SkopsArchive) -> dict[str, Any]:
    return attribute(archive.nodes("TreePredictor")[0], "nodes")


def booster_bytes(archive: SkopsArchive) -> tuple[str, bytes]:
    handle = attribute(archive.nodes("Booster")[0], "handle")
    return handle["file"], archive.members[handle["file"]]


def set_typed(raw: bytes, key: str, index: int, value: float | int) -> bytes:
    """XGBoost UBJSON with item ``index`` of the first typed array ``key`` replaced."""
    name = key.encode()
    start = raw.index(b"L" + struct.pack(">q", len(name)) + name) + 9 + len(name)
    kind = chr(raw[start + 2])
    fmt = {"l": ">i", "d": ">f", "U": ">B", "L": ">q"}[kind]
    offset = start + 13 + index * struct.calcsize(fmt)
    return raw[:offset] + struct.pack(fmt, value) + raw[offset + struct.calcsize(fmt) :]


def lightgbm_text(archive: SkopsArchive) -> str:
    return json.loads(attribute(archive.nodes("Booster")[0], "_handle")["content"])


def set_lightgbm_text(archive: SkopsArchive, text: str) -> None:
    attribute(archive.nodes("Booster")[0], "_handle")["content"] = json.dumps(text)


def with_tree_sizes(text: str) -> str:
    """LightGBM text with tree_sizes recomputed, as an attacker editing a tree would."""
    head, _, rest = text.partition("\n\nTree=0\n")
    body, _, tail = ("Tree=0\n" + rest).partition("end of trees\n")
    blocks = ["Tree=" + block for block in body.split("Tree=")[1:]]
    sizes = " ".join(str(len(block)) for block in blocks)
    lines = [
        f"tree_sizes={sizes}" if line.startswith("tree_sizes=") else line
        for line in head.split("\n")
    ]
    return "\n".join(lines) + "\n\n" + body + "end of trees\n" + tail


def first_value(text: str, key: str, value: str) -> str:
    start = text.index("\n" + key + "=") + len(key) + 2
    end = min(text.index(" ", start), text.index("\n", start))
    return with_tree_sizes(text[:start] + value + text[end:])


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def raw_zip(members: list[tuple[str, int, bytes, int, int]]) -> bytes:
    """A zip written by hand: (name, method, data as stored, crc, declared size) each, so
    a member can hold a deflate stream made elsewhere or lie about its size."""
    out = bytearray()
    central = bytearray()
    for name, method, data, crc, size in members:
        encoded = name.encode()
        offset = len(out)
        out += struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            20,
            0,
            method,
            0,
            0x21,
            crc,
            len(data),
            size,
            len(encoded),
            0,
        )
        out += encoded + data
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            method,
            0,
            0x21,
            crc,
            len(data),
            size,
            len(encoded),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += encoded
    start = len(out)
    out += central
    out += struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), start, 0
    )
    return bytes(out)


def inflating_schema(archive: SkopsArchive, size: int, declared: int | None = None) -> bytes:
    """The archive with schema.json replaced by a deflate stream of ``size`` spaces (about
    a thousandth of that stored), declaring ``declared`` bytes (default: the truth)."""
    block = b" " * (1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    count = size // len(block)
    stream = piece * count + compressor.flush()
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    members = [
        (name, 0, data, zlib.crc32(data), len(data))
        for name, data in archive.members.items()
        if name != "schema.json"
    ]
    members.append(("schema.json", 8, stream, crc, size if declared is None else declared))
    return raw_zip(members)


@dataclass(frozen=True)
class Case:
    """One hostile model: trained as ``algorithm``, then ``edit``-ed (an archive edit, or a
    function of the original blob returning new bytes); ``expected`` must appear in the
    error (None: the call must succeed with the untouched model's answer)."""

    name: str
    algorithm: str
    edit: Callable[..., Any]
    expected: str | None
    hyperparams: dict[str, Any] | None = None
    kind: str = "classification"
    column: str = "data"  # sqml_models column edited: 'data' or 'feature_schema'


def _scramble(raw: bytes, start: int, length: int, seed: int) -> bytes:
    rng = random.Random(seed)
    data = bytearray(raw)
    for i in range(start, min(start + length, len(data))):
        data[i] = rng.randrange(256)
    return bytes(data)


def _xgb_text(raw: bytes, key: str, value: str) -> bytes:
    """XGBoost UBJSON with every text value of ``key`` set to ``value`` (the model and its
    configuration both state it)."""
    name = key.encode()
    prefix = b"L" + struct.pack(">q", len(name)) + name + b"SL"
    out, start = bytearray(), 0
    while (found := raw.find(prefix, start)) >= 0:
        at = found + len(prefix)
        (length,) = struct.unpack(">q", raw[at : at + 8])
        out += raw[start:at] + struct.pack(">q", len(value)) + value.encode()
        start = at + 8 + length
    return bytes(out + raw[start:])


def _xgb(edit: Callable[[bytes], bytes]) -> Callable[[SkopsArchive], None]:
    def apply(archive: SkopsArchive) -> None:
        name, raw = booster_bytes(archive)
        archive.members[name] = edit(raw)

    return apply


def _lgb(edit: Callable[[str], str]) -> Callable[[SkopsArchive], None]:
    def apply(archive: SkopsArchive) -> None:
        set_lightgbm_text(archive, edit(lightgbm_text(archive)))

    return apply


def _tree_field(field: str, value: Any, which: int = 0) -> Callable[[SkopsArchive], None]:
    def apply(archive: SkopsArchive) -> None:
        archive.edit_array(tree_nodes(archive, which), lambda a: a[field].__setitem__(0, value))

    return apply


def _hgb_field(field: str, value: Any) -> Callable[[SkopsArchive], None]:
    def apply(archive: SkopsArchive) -> None:
        archive.edit_array(hgb_nodes(archive), lambda a: a[field].__setitem__(0, value))

    return apply


_fresh_ids = iter(range(1, 1 << 30))


def set_json(node: dict[str, Any], value: str) -> None:
    """A JSON node's value, under an id of its own: skops builds the first node of an id
    wherever the id recurs (small ints share one), so an edit under a shared id would be
    ignored."""
    node["content"] = value
    node["__id__"] = next(_fresh_ids)


def _tree_state(key: str, value: str) -> Callable[[SkopsArchive], None]:
    def apply(archive: SkopsArchive) -> None:
        set_json(archive.nodes("Tree")[0]["content"]["content"][key], value)

    return apply


def _tree_features(value: str) -> Callable[[SkopsArchive], None]:
    def apply(archive: SkopsArchive) -> None:
        set_json(archive.nodes("Tree")[0]["__reduce__"]["args"]["content"][0], value)

    return apply


def _attribute_array(
    owner: str, key: str, edit: Callable[[np.ndarray], Any]
) -> Callable[[SkopsArchive], None]:
    def apply(archive: SkopsArchive) -> None:
        archive.edit_array(attribute(archive.nodes(owner)[0], key), edit)

    return apply


def _kd_tree_index(archive: SkopsArchive) -> None:
    kd_tree = archive.nodes("KDTree")[0]
    index = kd_tree["content"]["content"][1]
    archive.edit_array(index, lambda a: a.__setitem__(0, 10**9))


def _wrong_dtype(archive: SkopsArchive) -> None:
    node = tree_nodes(archive)
    archive.set_array(node, np.zeros(len(archive.array(node)), dtype=np.float64))


def _deep_schema(archive: SkopsArchive) -> None:
    archive.schema["content"]["content"]["padding"] = json.loads(deep_json(500))


def _replaced_schema(blob: bytes, text: str) -> bytes:
    """The archive with schema.json replaced by ``text`` (which Python itself may be
    unable to parse, as 100,000 nested brackets)."""
    members = SkopsArchive(blob).members
    members["schema.json"] = text.encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _booster_reduced(archive: SkopsArchive) -> None:
    archive.nodes("Booster")[0]["__loader__"] = "ReduceNode"


def _shared_booster_id(archive: SkopsArchive) -> None:
    """A second node with the booster handle's id but other bytes, built first by skops."""
    handle = attribute(archive.nodes("Booster")[0], "handle")
    name = "decoy.bin"
    archive.members[name] = b"{" + b"\x00" * 200
    decoy = dict(handle, file=name)
    archive.schema["content"]["content"]["steps"]["content"].insert(0, decoy)


def _gb_stage_count(archive: SkopsArchive) -> None:
    model = archive.nodes("GradientBoostingClassifier")[0]
    set_json(attribute(model, "n_estimators_"), "500")


def _svc_support(archive: SkopsArchive) -> None:
    _attribute_array("SVC", "_n_support", lambda a: a.__setitem__(0, a[0] + 1000))(archive)


def _mlp_layer(archive: SkopsArchive) -> None:
    layers = attribute(archive.nodes("MLPClassifier")[0], "coefs_")["content"]
    archive.edit_array(layers[1], lambda a: a[:3])


def _blob_edit(edit: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    edit.blob_level = True  # type: ignore[attr-defined]
    return edit


SMALL = {
    "random_forest": {"n_estimators": 3},
    "hist_gradient_boosting": {"max_iter": 3},
    "xgboost": {"n_estimators": 3},
    "lightgbm": {"n_estimators": 3},
    "gradient_boosting": {"n_estimators": 3},
    "mlp": {"max_iter": 20},
}

CASES = [
    # the table
    Case("tree feature 1e8", "decision_tree", _tree_field("feature", 10**8), "feature"),
    Case("tree child 1e9", "decision_tree", _tree_field("left_child", 10**9), "child"),
    Case("tree child -5", "decision_tree", _tree_field("right_child", -5), "child"),
    Case("tree root to itself", "decision_tree", _tree_field("left_child", 0), "child"),
    Case("forest root to itself", "random_forest", _tree_field("left_child", 0, 1), "child"),
    Case("hgb root to itself", "hist_gradient_boosting", _hgb_field("left", 0), "child"),
    Case("hgb child 1e8", "hist_gradient_boosting", _hgb_field("right", 10**8), "child"),
    Case("knn index out of range", "knn", _kd_tree_index, None),
    Case(
        "xgboost 200 bytes scrambled",
        "xgboost",
        _xgb(lambda raw: _scramble(raw, raw.index(b"left_children"), 200, 1)),
        "booster",
    ),
    Case(
        "xgboost 200 bytes scrambled elsewhere",
        "xgboost",
        _xgb(lambda raw: _scramble(raw, len(raw) // 3, 200, 2)),
        "booster",
    ),
    Case(
        "lightgbm child edited",
        "lightgbm",
        _lgb(lambda t: first_value(t, "left_child", "0")),
        "child",
    ),
    Case(
        "schema.json inflating to 1 GiB",
        "decision_tree",
        _blob_edit(lambda blob: inflating_schema(SkopsArchive(blob), 1 << 30)),
        "unpacks to 10737",
    ),
    # more
    Case(
        "schema.json lying about its size",
        "decision_tree",
        _blob_edit(lambda blob: inflating_schema(SkopsArchive(blob), 64 << 20, 4096)),
        "not a skops model archive",
    ),
    Case("truncated zip", "decision_tree", _blob_edit(lambda b: b[: len(b) // 2]), "not a skops"),
    Case("wrong dtype", "decision_tree", _wrong_dtype, "could not be loaded"),
    Case("NaN threshold", "decision_tree", _tree_field("threshold", float("nan")), "threshold"),
    Case("negative node count", "decision_tree", _tree_state("node_count", "-1"), "nodes"),
    Case("huge n_features", "decision_tree", _tree_features("1099511627776"), "features"),
    Case("schema.json nested 500 deep", "decision_tree", _deep_schema, "nested deeper"),
    Case(
        "schema.json nested 100000 deep",
        "decision_tree",
        _blob_edit(lambda blob: _replaced_schema(blob, deep_json(100_000))),
        "nests more than 64 levels",
    ),
    Case(
        "feature schema nested 100000 deep",
        "decision_tree",
        _blob_edit(lambda _: deep_json(100_000).encode()),
        "feature schema",
        column="feature_schema",
    ),
    Case(
        "knn training point NaN",
        "knn",
        _attribute_array("KNeighborsClassifier", "_fit_X", lambda a: a.__setitem__((0, 0), np.nan)),
        "not finite",
    ),
    Case(
        "xgboost feature out of range",
        "xgboost",
        _xgb(lambda raw: set_typed(raw, "split_indices", 0, 10**8)),
        "feature",
    ),
    Case(
        "xgboost huge num_feature",
        "xgboost",
        _xgb(lambda raw: _xgb_text(raw, "num_feature", "2000000000")),
        "num_feature",
    ),
    Case("xgboost booster rebuilt by reduce", "xgboost", _booster_reduced, "booster"),
    Case("xgboost handle id shared with a decoy", "xgboost", _shared_booster_id, "booster"),
    Case(
        "lightgbm huge feature count",
        "lightgbm",
        _lgb(lambda t: t.replace("max_feature_idx=3", "max_feature_idx=2000000000", 1)),
        "max_feature_idx",
    ),
    Case("lightgbm truncated text", "lightgbm", _lgb(lambda t: t[: len(t) // 2]), "booster"),
    Case("gradient boosting stage count", "gradient_boosting", _gb_stage_count, "stage"),
    Case("svc support counts", "svc", _svc_support, "support"),
    Case("mlp layer shapes", "mlp", _mlp_layer, "layer"),
    Case(
        "linear coefficients shape",
        "logistic_regression",
        _attribute_array("LogisticRegression", "coef_", lambda a: a[:, :2]),
        "coefficients",
    ),
    Case(
        "kmeans centres width",
        "kmeans",
        _attribute_array("KMeans", "cluster_centers_", lambda a: a[:, :2]),
        "centres",
        kind="clustering",
    ),
]


PROBE = [5.1, 3.5, 1.4, 0.2]  # an iris row: what the child process asks each model


def build(conn: sqlite3.Connection) -> dict[str, tuple[int, Any]]:
    """Train and tamper every case into ``conn``'s database: case name -> (model id, the
    untouched model's answer to PROBE)."""
    models: dict[str, tuple[int, Any]] = {}
    for case in CASES:
        options = {
            "hyperparams": case.hyperparams or SMALL.get(case.algorithm, {}),
            "random_state": 1,
        }
        target = None if case.kind == "clustering" else "target"
        if target is None:
            options["features"] = list(IRIS_FEATURES)
        args = (case.name, case.kind, case.algorithm, "dataset_iris", target, 0.25, "shuffle")
        (text,) = conn.execute(
            "SELECT sqml_train(?, ?, ?, ?, ?, ?, ?, ?)", (*args, json.dumps(options))
        ).fetchone()
        model_id = json.loads(text)["model_id"]
        (before,) = conn.execute(
            "SELECT sqml_predict(?, ?)", (case.name, json.dumps(PROBE))
        ).fetchone()
        (blob,) = conn.execute("SELECT data FROM sqml_models WHERE id = ?", (model_id,)).fetchone()
        if case.column == "feature_schema" or getattr(case.edit, "blob_level", False):
            new = case.edit(bytes(blob))
        else:
            archive = SkopsArchive(bytes(blob))
            case.edit(archive)
            new = archive.blob()
        if case.column == "feature_schema":
            conn.execute(
                "UPDATE sqml_models SET feature_schema = ? WHERE id = ?", (new.decode(), model_id)
            )
        else:
            digest = hashlib.sha256(new).hexdigest()
            conn.execute(
                "UPDATE sqml_models SET data = ?, digest = ? WHERE id = ?", (new, digest, model_id)
            )
        models[case.name] = (model_id, before)
    conn.commit()
    return models
