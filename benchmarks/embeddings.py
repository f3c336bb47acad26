# ruff: noqa: S608 - a benchmark building its own fixed queries
"""Benchmark of pretrained embeddings from SQL (issue 13), printing a Markdown table.

1. ``sqml_embed`` over N short sentences with the built-in model, against WordLlama's own
   ``embed(texts, norm=True)`` called directly in Python on the same sentences (the SQL
   call's overhead); ``sqml_embed_batch`` over the same column through
   ``json_group_array`` and the table-valued ``sqml_embed_table`` for comparison.
2. Embedding + ``vec0`` insert of M rows, then top-10 KNN per query: embedding the query
   in SQL (``MATCH sqml_embed('default', ?)``) against sqlite-vec's own query on a
   precomputed vector (``MATCH ?``).

    .venv/bin/python benchmarks/embeddings.py            # N = 10,000, M = 100,000
    .venv/bin/python benchmarks/embeddings.py --quick    # N = 2,000, M = 5,000 (seconds)

Needs the extras embeddings and vectors (``pip install -e '.[test]'`` has them).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import sqlite_ml

SUBJECTS = "the team|investors|a storm|the chef|the council|my neighbour|the striker|the bank"
VERBS = "won|sold|hit|baked|approved|painted|scored|raised|lost|cleaned"
OBJECTS = "the final|shares|the coast|fresh bread|a new budget|the fence|a goal|interest rates"
TAILS = "today|again|this week|after a long wait|as expected|for the second time|quietly"


def sentences(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    parts = [group.split("|") for group in (SUBJECTS, VERBS, OBJECTS, TAILS)]
    return [" ".join(rng.choice(words) for words in parts) for _ in range(count)]


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def embedding_throughput(count: int, repeat: int) -> list[tuple[str, str]]:
    import wordllama
    from wordllama import WordLlama

    texts = sentences(count)
    conn = sqlite3.connect(":memory:")
    sqlite_ml.register(conn)
    conn.execute("CREATE TABLE t(body TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [(text,) for text in texts])
    conn.execute("SELECT sqml_embed('default', 'warm up')").fetchone()
    library = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    library.embed(texts[:10], norm=True)
    direct = best_of(repeat, lambda: library.embed(texts, norm=True))
    scalar = best_of(
        repeat, lambda: conn.execute("SELECT count(sqml_embed('default', body)) FROM t").fetchone()
    )
    batch = best_of(
        repeat,
        lambda: conn.execute(
            "SELECT length(sqml_embed_batch('default', json_group_array(body))) FROM t"
        ).fetchone(),
    )
    table_rows = [("sqml_embed_table (native binding only)", "not available in this binding")]
    if sqlite_ml.binding_mode(conn) == "native":
        table = best_of(
            repeat,
            lambda: conn.execute(
                "SELECT count(embedding) FROM sqml_embed_table('default',"
                " 'SELECT rowid, body FROM t')"
            ).fetchone(),
        )
        table_rows = [
            ("sqml_embed_table, a chunk of rows per Python call", f"{count / table:,.0f}/s"),
            ("sqml_embed_table / sqml_embed throughput", f"{scalar / table:.2f}x"),
        ]
    return [
        (f"WordLlama embed(norm=True), {count:,} sentences, direct", f"{count / direct:,.0f}/s"),
        ("sqml_embed, one call per row", f"{count / scalar:,.0f}/s"),
        ("sqml_embed / direct throughput", f"{direct / scalar:.2f}x"),
        ("sqml_embed_batch over json_group_array", f"{count / batch:,.0f}/s"),
        *table_rows,
    ]


def knn(rows: int, queries: int) -> list[tuple[str, str]]:
    conn = sqlite3.connect(":memory:")
    sqlite_ml.register(conn, vectors=True)
    conn.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO docs(body) VALUES (?)", [(t,) for t in sentences(rows, 1)])
    conn.execute(
        "CREATE VIRTUAL TABLE doc_vectors USING vec0(embedding float[256] distance_metric=cosine)"
    )
    start = time.perf_counter()
    conn.execute(
        "INSERT INTO doc_vectors(rowid, embedding) SELECT id, sqml_embed('default', body) FROM docs"
    )
    conn.commit()
    insert = time.perf_counter() - start
    asked = sentences(queries, 2)
    vectors = [
        conn.execute("SELECT sqml_embed('default', ?)", (text,)).fetchone()[0] for text in asked
    ]
    knn_sql = "SELECT rowid, distance FROM doc_vectors WHERE embedding MATCH {} AND k = 10"
    in_sql = knn_sql.format("sqml_embed('default', ?)")
    precomputed = knn_sql.format("?")

    def once(sql: str, value: object) -> float:
        start = time.perf_counter()
        conn.execute(sql, (value,)).fetchall()
        return time.perf_counter() - start

    # The two forms alternate, query by query (best of 3 each), so that a busy machine's
    # drift weighs on both alike; the median over the queries is reported.
    embedded_times, own_times = [], []
    for text, vector in zip(asked, vectors, strict=True):
        embedded_times.append(min(once(in_sql, text) for _ in range(3)))
        own_times.append(min(once(precomputed, vector) for _ in range(3)))
    same = all(
        conn.execute(in_sql, (text,)).fetchall() == conn.execute(precomputed, (v,)).fetchall()
        for text, v in zip(asked[:5], vectors[:5], strict=True)
    )
    with_embedding, own = statistics.median(embedded_times), statistics.median(own_times)
    return [
        (f"sqml_embed + vec0 insert of {rows:,} rows", f"{insert:.2f} s ({rows / insert:,.0f}/s)"),
        (
            f"top-10 KNN, query embedded in SQL (median of {queries})",
            f"{with_embedding * 1e3:.2f} ms",
        ),
        ("top-10 KNN, sqlite-vec on a precomputed vector", f"{own * 1e3:.2f} ms"),
        ("embedded-query KNN / precomputed KNN", f"{with_embedding / own:.2f}x"),
        ("same neighbours either way", "yes" if same else "NO"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    args = parser.parse_args()
    count, rows, queries, repeat = (
        (2_000, 5_000, 20, 2) if args.quick else (10_000, 100_000, 100, 3)
    )
    table = embedding_throughput(count, repeat) + knn(rows, queries)
    print("| measurement | result |")
    print("|---|---|")
    for name, value in table:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
