"""Split strategies: shuffle (default), stratified (classification), last (by order_by or
rowid)."""

from __future__ import annotations

import pytest


def test_stratified_keeps_class_proportions_in_the_test_split(db):
    db.conn.execute("CREATE TABLE skewed (x REAL, y TEXT)")
    rows = [(float(i), "rare" if i % 10 == 0 else "common") for i in range(100)]
    db.conn.executemany("INSERT INTO skewed VALUES (?, ?)", rows)
    db.conn.commit()
    result = db.train_with(
        "e", "classification", "dummy", "skewed", "y", test_size=0.2, split_strategy="stratified"
    )
    assert result["test_rows"] == 20
    # dummy predicts the majority class: 18 of 20 test rows exactly when the split keeps 1:9
    assert result["metrics"]["accuracy"] == 0.9
    again = db.train_with(
        "e", "classification", "dummy", "skewed", "y", test_size=0.2, split_strategy="stratified"
    )
    assert again["score"] == result["score"]


def test_stratified_is_for_classification_only(db):
    db.load("diabetes")
    message = db.train_error(
        "e", "regression", "ridge", "dataset_diabetes", "target", split_strategy="stratified"
    )
    assert "split strategy 'stratified'" in message and "'classification'" in message


def test_stratified_keeps_a_single_member_class_for_training(db):
    db.conn.execute("CREATE TABLE odd (x REAL, y TEXT)")
    db.conn.executemany(
        "INSERT INTO odd VALUES (?, ?)", [(float(i), "a" if i else "b") for i in range(20)]
    )
    db.conn.commit()
    result = db.train_with("e", "classification", "dummy", "odd", "y", split_strategy="stratified")
    assert result["test_rows"] == 5 and result["metrics"]["accuracy"] == 1.0  # 'b' trains


def test_stratified_on_a_view_without_key_draws_positions_and_says_why_it_fails(db):
    db.conn.execute("CREATE TABLE odd (x REAL, y TEXT)")
    db.conn.executemany(
        "INSERT INTO odd VALUES (?, ?)", [(float(i), "a" if i else "b") for i in range(20)]
    )
    db.conn.execute("CREATE VIEW odd_view AS SELECT * FROM odd")
    db.conn.commit()
    with pytest.raises(Exception, match="cannot split the rows \\(stratified\\)"):
        db.train_with("e", "classification", "dummy", "odd_view", "y", split_strategy="stratified")


def ordered_table(db):
    """y = 0 for the first 30 rows by t, then 1; rowid order is the reverse of t."""
    db.conn.execute("CREATE TABLE series (t INTEGER, x REAL, y INTEGER)")
    db.conn.executemany(
        "INSERT INTO series VALUES (?, ?, ?)",
        [(t, float(t % 7), 0 if t < 30 else 1) for t in reversed(range(40))],
    )
    db.conn.commit()


def test_last_by_order_by_tests_on_the_latest_rows(db):
    ordered_table(db)
    # trained on t < 30 (all class 0): every test row (t >= 30, class 1) is wrong
    result = db.train_with(
        "e", "classification", "dummy", "series", "y", {"order_by": "t"}, 0.25, "last"
    )
    assert result["test_rows"] == 10 and result["score"] == 0.0


def test_last_by_rowid_for_a_table(db):
    ordered_table(db)
    # rowid order is t descending: the last rows are t < 10, all class 0, as most training rows
    result = db.train_with("e", "classification", "dummy", "series", "y", None, 0.25, "last")
    assert result["test_rows"] == 10 and result["score"] == 1.0


def test_last_on_a_view_needs_order_by(db):
    ordered_table(db)
    db.conn.execute("CREATE VIEW series_view AS SELECT * FROM series")
    db.conn.commit()
    message = db.train_error(
        "e", "classification", "dummy", "series_view", "y", split_strategy="last"
    )
    assert "needs option order_by" in message and "series_view" in message
    result = db.train_with(
        "e", "classification", "dummy", "series_view", "y", {"order_by": "t"}, 0.25, "last"
    )
    assert result["score"] == 0.0


def test_order_by_must_name_a_column(db):
    ordered_table(db)
    message = db.train_error(
        "e", "classification", "dummy", "series", "y", {"order_by": "when"}, 0.25, "last"
    )
    assert "unknown order_by column 'when'" in message


def test_unknown_split_strategy_lists_all_three(iris):
    message = iris.train_error(
        "e", "classification", "dummy", "dataset_iris", "target", split_strategy="kfold"
    )
    assert "'shuffle', 'stratified', 'last'" in message
