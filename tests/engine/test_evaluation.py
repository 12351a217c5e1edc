import io
import json
import shutil

import pytest

from matcher.cli import main
from matcher.evaluation import (
    FLAG_DEPTH,
    flagged,
    load_corpus,
    load_qrels,
    mrr_at,
    ndcg_at,
    precision_at,
    recall_at,
    score_flags,
    score_run,
    write_trec,
)


def test_metrics_on_hand_computed_cases():
    judged = {"a": 2, "b": 1}
    assert ndcg_at(["a", "b"], judged, 10) == pytest.approx(1.0)
    # b first: dcg = 1/log2(2) + 3/log2(3); ideal = 3 + 1/log2(3)
    expected = (1 + 3 / 1.5849625) / (3 + 1 / 1.5849625)
    assert ndcg_at(["b", "a"], judged, 10) == pytest.approx(expected, rel=1e-6)
    assert mrr_at(["x", "b"], judged, 10) == 0.5
    assert recall_at(["x", "a"], judged, 10) == 0.5
    assert recall_at(["a"] + ["x"] * 200, {"a": 1, "z": 1}, 100) == 0.5


def test_score_run_skips_unjudged_queries():
    scores = score_run({"q1": [("a", 1.0)], "q2": []}, {"q1": {"a": 1}, "q2": {"b": 0}})
    assert scores["nDCG@10"] == 1.0


def test_p_at_5_only_on_sets_judged_on_the_0_to_3_scale():
    run = {"q1": [("a", 1.0), ("b", 0.9), ("c", 0.8)], "q2": [("d", 1.0)], "q3": [("e", 1.0)]}
    assert precision_at(["a", "b", "c"], {"a": 3, "b": 1, "c": 2}, 5, 2) == pytest.approx(0.4)
    derived = score_run(run, {"q1": {"a": 2, "b": 1}})
    assert "P@5" not in derived  # grades 1–2 of a derived set are not "answers"
    judged = {"q1": {"a": 3, "b": 1, "c": 2}, "q2": {"d": 1, "x": 0}, "q3": {"e": 0, "y": 2}}
    scores = score_run(run, judged)
    # q2 has nothing at grade ≥ 2 (unanswerable), so P@5 is over q1 (2 of 5) and q3 (0 of 5).
    assert scores["P@5"] == pytest.approx(0.2)


def test_trec_format():
    out = io.StringIO()
    write_trec({"q1": [("d1", 0.5), ("d2", 0.25)]}, out, tag="t")
    assert out.getvalue().splitlines() == ["q1 Q0 d1 1 0.500000 t", "q1 Q0 d2 2 0.250000 t"]


def test_corpus_keywords_count_as_text_and_empty_docs_kept(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"id": "x", "title": "", "text": "", "keywords": ["a", "b"]}) + "\n"
                    + json.dumps({"id": "y", "title": None, "text": ""}) + "\n"
                    + "[1, 2]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="c.jsonl:3"):
        load_corpus(path)
    path.write_text("\n".join(path.read_text(encoding="utf-8").splitlines()[:2]), encoding="utf-8")
    docs = load_corpus(path)
    assert docs[0].text == "a b"
    assert (docs[1].title, docs[1].text) == ("", "")


def test_bad_qrels_line(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text("q1 0 d1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="q.tsv:1"):
        load_qrels(path)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_rank_cli_writes_trec(capsys, mode):
    code = main(["rank", "--corpus", "tests/data/tiny/corpus.jsonl",
                 "--queries", "tests/data/tiny/queries.jsonl", "--top-k", "3",
                 "--mode", mode, "--model", "fake", "--quiet"])
    assert code == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert all(len(parts) == 6 and parts[1] == "Q0" for parts in lines)
    by_query = {}
    for qid, _, doc, rank, score, tag in lines:
        by_query.setdefault(qid, []).append((doc, int(rank), float(score)))
        assert tag == f"g60-{mode}"
    assert by_query["q1"][0][0] in {"d1", "d4"}
    assert all(len(v) <= 3 for v in by_query.values())
    for ranked in by_query.values():
        assert [r for _, r, _ in ranked] == list(range(1, len(ranked) + 1))
        scores = [s for _, _, s in ranked]
        assert scores == sorted(scores, reverse=True)


def test_evaluate_cli_prints_every_mode(capsys):
    assert main(["evaluate", "tests/data/tiny", "--model", "fake", "--quiet"]) == 0
    out = capsys.readouterr().out
    for mode in ("hybrid", "dense", "lexical"):
        assert any(line.startswith(mode) for line in out.splitlines())
    assert "nDCG@10" in out and "R@100" in out


@pytest.mark.milvus
def test_evaluate_on_milvus_scores_as_in_process(capsys, tmp_path):
    """`evaluate --index milvus`: the vectors in Milvus collections (here a Milvus Lite file),
    the same scores as FAISS in memory (both search exactly at this size)."""
    def table(*extra: str) -> list[str]:
        assert main(["evaluate", "tests/data/tiny", "--model", "fake", "--quiet", *extra]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert any("vectors in " in line for line in lines)
        return [line.rsplit(maxsplit=1)[0] for line in lines  # without the seconds column
                if line.startswith(("hybrid", "dense", "lexical"))]

    in_process = table()
    on_milvus = table("--index", "milvus", "--milvus-uri", str(tmp_path / "eval.db"))
    assert len(on_milvus) == 3 and on_milvus == in_process


def test_cli_reports_bad_input(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path), "--model", "fake"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["rank", "--corpus", "nope.jsonl", "--queries", "x", "--model", "fake"]) == 2


def test_evaluate_keeps_its_vectors_in_a_cache_and_reuses_them(tmp_path, capsys):
    from embeddings.cache import EmbeddingCache

    cache = tmp_path / "embeddings.sqlite"
    args = ["evaluate", "tests/data/tiny", "--model", "fake", "--quiet", "--cache", str(cache)]
    assert main(args) == 0
    first = capsys.readouterr().out
    def stored() -> int:
        opened = EmbeddingCache(cache)
        try:
            return opened.count()
        finally:
            opened.close()

    count = stored()
    assert count > 0
    assert main(args) == 0
    second = capsys.readouterr().out
    assert stored() == count  # nothing new was encoded
    table = [line for line in first.splitlines() if line.startswith(("hybrid", "dense"))]
    # The same scores from the cached vectors (the timing column aside).
    assert [line.split()[:-1] for line in table] == [
        line.split()[:-1] for line in second.splitlines() if line.startswith(("hybrid", "dense"))]


def test_a_need_is_flagged_when_no_match_in_the_page_window_is_strong():
    assert flagged(["一般", "弱"])
    assert not flagged(["弱", "较强"])
    assert not flagged([])  # unrated (a single-ranker mode) claims nothing
    # A strong match below the page's window does not help the page.
    assert flagged(["弱"] * FLAG_DEPTH + ["强"])


def test_flag_scores_split_unanswerable_from_answerable_needs():
    qrels = {"q1": {"a": 3}, "q2": {"b": 1, "c": 0}, "q3": {"d": 0}, "q4": {"e": 2}}
    labels = {"q1": ["强"], "q2": ["一般"], "q3": ["较强", "弱"], "q4": ["弱"]}
    scores = score_flags(labels, qrels)
    # q2, q3 have nothing at grade ≥ 2: q2 is rightly flagged, q3 is not; q4 is a false alarm.
    assert (scores.unanswerable, scores.unanswerable_flagged) == (2, 1)
    assert (scores.answerable, scores.answerable_flagged) == (2, 1)
    assert scores.flagged_share == 0.5 and scores.false_alarm_share == 0.5


def test_evaluate_reports_flagged_needs_on_a_judged_set(tmp_path, capsys):
    for name in ("corpus.jsonl", "queries.jsonl"):
        shutil.copy(f"tests/data/tiny/{name}", tmp_path / name)
    (tmp_path / "qrels.tsv").write_text("q1\t0\td1\t3\nq2\t0\td2\t0\n", encoding="utf-8")
    assert main(["evaluate", str(tmp_path), "--model", "fake", "--quiet"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "unanswerable needs flagged" in line]
    # Only the hybrid ranking is calibrated, so only it is reported.
    assert len(lines) == 1 and lines[0].startswith("hybrid:")
    assert "flagged 0/1" in lines[0] or "flagged 1/1" in lines[0]
