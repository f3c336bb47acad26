"""Text as features: preprocess ``embed`` turns a TEXT column into a pretrained model's
vector inside the stored model (referenced by name and digest, never stored), and a
column of float32 BLOBs is used as vectors directly. Prediction (every form), table
prediction, evaluation and the fallbacks all work with them."""

from __future__ import annotations

import json
import random
import sqlite3

import numpy as np
import pytest

from .helpers import Db, expected_mode, without_packages

TOPICS = {
    "sports": (
        ["the striker", "the goalkeeper", "the coach", "the team", "the champion", "fans"],
        ["won", "lost", "scored in", "celebrated", "trained for", "played"],
        ["the football match", "the final", "the tournament", "the league game", "the race"],
    ),
    "finance": (
        ["investors", "the bank", "the company", "traders", "the central bank", "shareholders"],
        ["bought", "sold", "reported", "raised", "worried about", "cut"],
        ["shares", "interest rates", "quarterly earnings", "the stock market", "bond yields"],
    ),
    "weather": (
        ["heavy rain", "a storm", "strong wind", "snow", "the heatwave", "thick fog"],
        ["hit", "covered", "flooded", "swept over", "is expected in", "slowed traffic in"],
        ["the coast", "the valley", "the city this morning", "the region", "the mountains"],
    ),
    "cooking": (
        ["the chef", "grandma", "the baker", "the cook", "the restaurant", "my neighbour"],
        ["baked", "roasted", "seasoned", "simmered", "served", "chopped"],
        ["the bread", "a chicken stew", "fresh vegetables", "the tomato soup", "a lemon cake"],
    ),
}
OPTIONS = '{"preprocess": {"review": {"embed": "default"}}}'


def make_topics(db: Db, rows_per_topic: int = 45, seed: int = 7) -> None:
    """A small labelled set of topic sentences (mostly distinct), with a source column
    that says nothing about the topic."""
    rng = random.Random(seed)
    rows = []
    for topic, (subjects, verbs, objects) in TOPICS.items():
        for _ in range(rows_per_topic):
            text = f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}"
            rows.append((text, rng.choice(["web", "paper", "radio"]), topic))
    rng.shuffle(rows)
    db.conn.execute("CREATE TABLE reviews(review TEXT, source TEXT, topic TEXT)")
    db.conn.executemany("INSERT INTO reviews VALUES (?, ?, ?)", rows)
    db.conn.commit()


def train(db: Db, experiment: str, options: str | None = OPTIONS) -> dict:
    return json.loads(
        db.value(
            "SELECT sqml_train(?, 'classification', 'logistic_regression', 'reviews', 'topic',"
            " 0.3, 'stratified', ?)",
            (experiment, options),
        )
    )


@pytest.fixture
def topics(db: Db) -> Db:
    make_topics(db)
    return db


def test_embedded_text_beats_a_bag_of_categories(topics: Db) -> None:
    baseline = train(topics, "categories", None)  # the text one-hot encoded as categories
    embedded = train(topics, "embedded")
    assert baseline["score"] < 0.5
    assert embedded["score"] >= 0.9
    assert embedded["score"] > baseline["score"] + 0.4
    schema = json.loads(
        topics.value("SELECT feature_schema FROM sqml_models WHERE id = ?", (embedded["model_id"],))
    )
    review = schema["features"][0]
    assert review["kind"] == "embedding" and review["model"] == "wordllama-l2-supercat"
    assert review["dimension"] == 256
    assert review["digest"] == topics.value("SELECT digest FROM sqml_pretrained")
    assert topics.value("SELECT uses FROM sqml_pretrained") >= 1
    assert json.loads(topics.value("SELECT feature_types FROM sqml_runs WHERE id = 2")) == {
        "review": "embedding",
        "source": "categorical",
    }


def test_every_way_of_predicting_agrees(topics: Db) -> None:
    result = train(topics, "embedded")
    text = "the goalkeeper celebrated the final"
    as_json = topics.value(
        "SELECT sqml_predict('embedded', json_object('review', ?, 'source', 'web'))", (text,)
    )
    as_values = topics.value("SELECT sqml_predict('embedded', ?, 'web')", (text,))
    batch = json.loads(
        topics.value(
            "SELECT sqml_predict_batch('embedded', json_array(json_object('review', ?, "
            "'source', 'web'), json_array('heavy rain flooded the coast', 'paper')))",
            (text,),
        )
    )
    assert as_json == as_values == batch[0] == "sports" and batch[1] == "weather"
    probabilities = json.loads(
        topics.value(
            "SELECT sqml_predict_proba('embedded', json_object('review', ?, 'source', 'web'))",
            (text,),
        )
    )
    assert max(probabilities, key=probabilities.get) == "sports"
    # a NULL text is missing, imputed like a NULL number
    assert topics.value("SELECT sqml_predict('embedded', NULL, 'web')") in TOPICS
    evaluation = json.loads(topics.value("SELECT sqml_evaluate('embedded', 'reviews')"))
    assert evaluation["rows"] == 180 and evaluation["accuracy"] >= 0.9
    row_by_row = topics.rows(
        "SELECT rowid, sqml_predict('embedded', review, source) FROM reviews ORDER BY rowid"
    )
    if expected_mode() == "native":
        table = topics.rows(
            "SELECT row_id, prediction FROM sqml_predict_table('embedded', 'reviews')"
            " ORDER BY row_id"
        )
        assert table == row_by_row
    assert result["model_id"] == topics.active_model_id("embedded")


def test_a_tampered_digest_is_refused_at_prediction(topics: Db) -> None:
    result = train(topics, "embedded")
    schema = topics.value(
        "SELECT feature_schema FROM sqml_models WHERE id = ?", (result["model_id"],)
    )
    digest = json.loads(schema)["features"][0]["digest"]
    topics.conn.execute(
        "UPDATE sqml_models SET feature_schema = replace(feature_schema, ?, ?)",
        (digest, "0" * 64),
    )
    topics.conn.commit()
    with pytest.raises(sqlite3.OperationalError, match="its vectors would differ"):
        topics.value("SELECT sqml_predict('embedded', 'x', 'web')")


def test_embed_options_are_checked_before_anything_is_written(topics: Db) -> None:
    for options, message in [
        ('{"preprocess": {"review": {"embed": 3}}}', "must name a pretrained model"),
        ('{"preprocess": {"review": {"embed": "nope"}}}', "unknown embedding model 'nope'"),
        (
            '{"preprocess": {"review": {"embed": "default", "encode": "one_hot"}}}',
            "both encode and embed",
        ),
    ]:
        with pytest.raises(sqlite3.OperationalError, match=message):
            train(topics, "bad", options)
    assert topics.value("SELECT count(*) FROM sqml_runs") == 0


def test_blob_vectors_are_features(topics: Db) -> None:
    topics.conn.executescript(
        """
        CREATE TABLE vectors AS
            SELECT sqml_embed('default', review) AS embedding, topic FROM reviews;
        """
    )
    result = json.loads(
        topics.value(
            "SELECT sqml_train('vectors', 'classification', 'logistic_regression', 'vectors',"
            " 'topic', 0.3, 'stratified')"
        )
    )
    assert result["score"] >= 0.9
    features = json.loads(topics.value("SELECT feature_schema FROM sqml_models"))["features"]
    assert features == [{"name": "embedding", "kind": "vector", "categories": [], "dimension": 256}]
    text = "traders sold shares"
    blob = topics.value("SELECT sqml_embed('default', ?)", (text,))
    assert topics.value("SELECT sqml_predict('vectors', ?)", (blob,)) == "finance"
    as_array = json.dumps({"embedding": np.frombuffer(blob, "<f4").tolist()})
    assert topics.value("SELECT sqml_predict('vectors', ?)", (as_array,)) == "finance"
    with pytest.raises(sqlite3.OperationalError, match="is a BLOB of 8 bytes, but the model"):
        topics.value("SELECT sqml_predict('vectors', ?)", (b"\x00" * 8,))
    if expected_mode() == "native":
        table = topics.rows("SELECT prediction FROM sqml_predict_table('vectors', 'vectors')")
        assert len(table) == 180
    evaluation = json.loads(topics.value("SELECT sqml_evaluate('vectors', 'vectors')"))
    assert evaluation["accuracy"] >= 0.9


def test_vector_columns_must_be_float32_of_one_dimension(db: Db) -> None:
    db.conn.execute("CREATE TABLE t(v, y)")
    db.conn.executemany(
        "INSERT INTO t VALUES (?, ?)",
        [(np.ones(3, "<f4").tobytes(), 1), (np.ones(4, "<f4").tobytes(), 0)] * 3,
    )
    with pytest.raises(sqlite3.OperationalError, match="BLOBs of 12, 16 bytes"):
        db.value("SELECT sqml_train('v', 'regression', 'ridge', 't', 'y')")
    db.conn.execute("DELETE FROM t")
    db.conn.executemany(
        "INSERT INTO t VALUES (?, ?)", [(np.ones(3, "<f4").tobytes(), 1), ("text", 0)] * 3
    )
    with pytest.raises(sqlite3.OperationalError, match="mixes BLOB values with 'text'"):
        db.value("SELECT sqml_train('v', 'regression', 'ridge', 't', 'y')")
    db.conn.execute("DELETE FROM t")
    nan = np.array([1, np.nan, 0], "<f4").tobytes()
    db.conn.executemany("INSERT INTO t VALUES (?, ?)", [(nan, 1)] * 4)
    with pytest.raises(sqlite3.OperationalError, match="NaN or infinite"):
        db.value("SELECT sqml_train('v', 'regression', 'ridge', 't', 'y')")


PREDICT = """
import sqlite3, sqlite_ml
conn = sqlite3.connect(sys.argv[1]); sqlite_ml.register(conn)
try:
    conn.execute("SELECT sqml_predict('embedded', 'the team won', 'web')").fetchone()
except sqlite3.Error as error:
    print(error)
"""


def test_a_database_moved_to_a_machine_without_the_model_says_what_to_install(
    topics: Db, python
) -> None:  # noqa: ANN001
    train(topics, "embedded")
    topics.conn.commit()
    done = python(without_packages("wordllama") + PREDICT, str(topics.path))
    assert "embeds column 'review' with the pretrained model 'wordllama-l2-supercat'" in (
        done.stdout
    ), done.stderr
    assert "pip install 'sqlite-ml[embeddings]'" in done.stdout


def test_streamed_training_refuses_embeddings_and_a_sample_embeds_them(topics: Db) -> None:
    streamed = json.dumps({"stream": True, "preprocess": {"review": {"embed": "default"}}})
    with pytest.raises(sqlite3.OperationalError, match="preprocess embed embeds text in memory"):
        topics.value(
            "SELECT sqml_train('s', 'classification', 'sgd', 'reviews', 'topic',"
            " 0.3, 'shuffle', ?)",
            (streamed,),
        )
    sampled = json.dumps({"max_rows": 120, "preprocess": {"review": {"embed": "default"}}})
    result = json.loads(
        topics.value(
            "SELECT sqml_train('sampled', 'classification', 'logistic_regression', 'reviews',"
            " 'topic', 0.3, 'shuffle', ?)",
            (sampled,),
        )
    )
    assert result["train_rows"] + result["test_rows"] == 120 and result["score"] >= 0.8
    schema = json.loads(topics.value("SELECT feature_schema FROM sqml_models"))
    assert schema["features"][0]["kind"] == "embedding"


def test_a_column_of_distinct_vectors_is_a_feature_not_an_identifier(db: Db) -> None:
    # A distinct value on every row makes a TEXT column an identifier (left out); a
    # vector on every row is what a vector column holds.
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(60, 4)).astype("<f4")
    db.conn.execute("CREATE TABLE points(v BLOB, y REAL)")
    db.conn.executemany(
        "INSERT INTO points VALUES (?, ?)",
        [(row.tobytes(), float(row @ [1.0, -2.0, 0.5, 3.0])) for row in vectors],
    )
    db.conn.commit()
    db.value("SELECT sqml_train('points', 'regression', 'linear_regression', 'points', 'y')")
    [(types, warnings)] = db.rows("SELECT feature_types, warnings FROM sqml_runs")
    assert json.loads(types) == {"v": "vector"}
    assert warnings is None or "'v'" not in warnings
    assert db.value("SELECT sqml_predict('points', ?)", (vectors[0].tobytes(),)) == pytest.approx(
        float(vectors[0] @ [1.0, -2.0, 0.5, 3.0]), abs=1e-4
    )
