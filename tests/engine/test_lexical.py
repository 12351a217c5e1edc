import json
import math
import random
from collections import Counter

import numpy as np
import pytest

from matcher import lexical, lexical_files
from matcher.lexical import LexicalIndex
from matcher.tokenize import explanation_terms, tokenize

DOCS = {
    1: "一种锂离子电池高镍正极材料的包覆改性方法",
    2: "基于深度学习的工业视觉缺陷检测系统",
    3: "光伏组件清洗机器人及其控制方法",
    4: "Lithium-ion battery cathode coating for cycle stability",
}


@pytest.fixture()
def index() -> LexicalIndex:
    idx = LexicalIndex()
    idx.build(DOCS.items())
    return idx


def test_tokenize_keeps_words_and_drops_punctuation():
    tokens = tokenize("锂离子电池，正极材料！ＡＢＣ")
    assert "电池" in tokens and "锂离子" in tokens
    assert "abc" in tokens  # full-width folded, lower-cased
    assert "，" not in tokens and "！" not in tokens


def test_search_ranks_shared_words_first(index):
    hits = index.search("锂电池正极材料循环寿命", 3)
    assert hits[0][0] == 1
    assert all(score > 0 for _, score in hits)


def test_english_query_meets_english_doc(index):
    assert index.search("battery cathode", 2)[0][0] == 4


def test_allowed_ids_filter_keeps_only_allowed(index):
    hits = index.search("电池 检测 机器人", 5, allowed_ids=np.array([2, 3]))
    assert {i for i, _ in hits} <= {2, 3}
    assert len(hits) == 2


def test_add_replace_and_remove(index):
    index.add([(2, "高镍正极材料 包覆")])
    assert {i for i, _ in index.search("视觉缺陷检测", 5)} == set()
    assert 2 in {i for i, _ in index.search("包覆", 5)}
    assert index.remove([1, 99]) == 1
    assert 1 not in {i for i, _ in index.search("锂离子电池", 5)}
    assert index.count() == 3


def test_scores_for_matches_full_scores(index):
    ids, scores = index.score_all("电池 正极")
    picked = index.scores_for("电池 正极", np.array([4, 1, 77]))
    by_id = dict(zip(ids.tolist(), scores.tolist(), strict=True))
    assert picked[0] == pytest.approx(by_id[4])
    assert picked[1] == pytest.approx(by_id[1])
    assert picked[2] == 0.0


def test_unknown_words_and_empty_index():
    assert LexicalIndex().search("电池", 5) == []
    idx = LexicalIndex()
    idx.build([(1, "光伏")])
    assert idx.search("完全无关的词语", 5) == []


def test_save_load_roundtrip(index, tmp_path):
    index.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    assert loaded.search("正极 包覆", 3) == index.search("正极 包覆", 3)


def test_truncated_file_refused(index, tmp_path):
    index.save(tmp_path)
    path = tmp_path / lexical_files.DATA_FILE
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueError, match="unreadable"):
        LexicalIndex.load(tmp_path)


def test_arrays_that_disagree_are_refused(index, tmp_path):
    index.save(tmp_path)
    path = tmp_path / lexical_files.DATA_FILE
    with np.load(path) as data:
        arrays = dict(data)
    arrays["tfs"] = arrays["tfs"][:-1]
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(ValueError, match="disagree"):
        LexicalIndex.load(tmp_path)


def test_legacy_word_lists_load_and_are_replaced_on_save(index, tmp_path):
    with open(tmp_path / "tokens.jsonl", "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"schema": 1, "count": len(DOCS)}) + "\n")
        for doc_id, text in DOCS.items():
            fh.write(json.dumps([doc_id, tokenize(text)], ensure_ascii=False) + "\n")
    legacy = LexicalIndex.load(tmp_path)
    assert LexicalIndex.data_path(tmp_path).name == "tokens.jsonl"
    assert legacy.search("正极 包覆", 3) == index.search("正极 包覆", 3)
    legacy.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [lexical_files.DATA_FILE]


def reference_scores(docs: dict[int, str], query: str) -> dict[int, float]:
    """Lucene BM25 straight from its formula, over every document."""
    words = {i: Counter(tokenize(t)) for i, t in docs.items()}
    lengths = {i: sum(c.values()) for i, c in words.items()}
    average = sum(lengths.values()) / len(docs)
    scores = dict.fromkeys(docs, 0.0)
    for term in tokenize(query):
        df = sum(1 for c in words.values() if term in c)
        if not df:
            continue
        idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
        for i, c in words.items():
            tf = c[term]
            norm = lexical.K1 * (1 - lexical.B + lexical.B * lengths[i] / average)
            scores[i] += idf * tf / (tf + norm)
    return scores


QUERIES = ["锂离子电池正极材料", "电池 电池 检测", "cathode battery coating", "光伏清洗机器人控制",
           "完全无关"]


def assert_scores_equal(idx: LexicalIndex, docs: dict[int, str]) -> None:
    assert sorted(idx.ids().tolist()) == sorted(docs)
    for query in QUERIES:
        ids, scores = idx.score_all(query)
        expected = reference_scores(docs, query) if docs else {}
        assert dict(zip(ids.tolist(), scores.tolist(), strict=True)) == pytest.approx(
            expected, rel=1e-5, abs=1e-6), query


def test_scores_follow_the_bm25_formula(index):
    assert_scores_equal(index, DOCS)


WORDS = ("锂离子 电池 正极 材料 包覆 光伏 组件 清洗 机器人 控制 视觉 缺陷 检测 深度学习 "
         "battery cathode coating robot vision").split()


@pytest.mark.parametrize("seed", range(4))
def test_edits_give_the_scores_of_a_fresh_build(monkeypatch, seed):
    # Small thresholds so the sequence packs the tail and drops dead rows several times.
    monkeypatch.setattr(lexical, "MIN_REPACK_ROWS", 3)
    rng = random.Random(seed)
    docs: dict[int, str] = {}
    idx = LexicalIndex()
    for step in range(120):
        doc_id = rng.randrange(25)
        if rng.random() < 0.3:
            assert idx.remove([doc_id]) == (1 if doc_id in docs else 0)
            docs.pop(doc_id, None)
        else:
            docs[doc_id] = " ".join(rng.choices(WORDS, k=rng.randint(0, 12)))
            idx.add([(doc_id, docs[doc_id])])
        if step % 20 == 19:
            assert_scores_equal(idx, docs)
            fresh = LexicalIndex()
            fresh.build(docs.items())
            for word in WORDS[:5]:
                assert idx.idf(word) == pytest.approx(fresh.idf(word))
    assert_scores_equal(idx, docs)


def test_save_load_and_snapshots_keep_tail_and_deletions(index, tmp_path):
    index.add([(2, "光伏 组件 清洗"), (5, "电池 包覆 正极")])
    index.remove([3])
    docs = {1: DOCS[1], 2: "光伏 组件 清洗", 4: DOCS[4], 5: "电池 包覆 正极"}
    snapshot = index.packed()  # what a background save writes
    index.save(tmp_path / "now")
    index.add([(6, "机器人")])  # neither the snapshot nor the saved files see later edits
    lexical.save_packed(snapshot, tmp_path / "later")
    for folder in ("now", "later"):
        assert_scores_equal(LexicalIndex.load(tmp_path / folder), docs)


def test_idf_prefers_rare_terms(index):
    assert index.idf("光伏") > index.idf("方法")


def test_explanation_terms_skip_stopwords_and_single_chars():
    terms = explanation_terms("本发明公开了一种锂离子电池的制备方法")
    assert {"锂离子", "电池", "制备"} <= terms
    assert "方法" not in terms and "的" not in terms and "本发明" not in terms


def test_words_give_the_explanation_terms_of_the_text(index):
    from matcher.explain import shared_terms

    index.add([(2, "基于深度学习的工业视觉缺陷检测系统，检测精度高")])  # a tail row too
    texts = {**DOCS, 2: "基于深度学习的工业视觉缺陷检测系统，检测精度高"}
    for doc_id, text in texts.items():
        assert sorted(index.words(doc_id)) == sorted(set(tokenize(text)))
        query = "锂电池正极材料包覆 视觉检测 battery"
        assert shared_terms(query, text, index.idf, doc_words=index.words(doc_id)) == \
            shared_terms(query, text, index.idf)
    with pytest.raises(KeyError):
        index.words(99)


def test_a_file_saved_before_the_vocabulary_loads_with_none(tmp_path):
    # postings.npz written without a "vocabulary" entry: cut with jieba's base dictionary.
    idx = LexicalIndex()
    idx.build(DOCS.items())
    idx.save(tmp_path)
    path = tmp_path / lexical_files.DATA_FILE
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files if name != "vocabulary"}
    np.savez(path, **arrays)
    again = LexicalIndex.load(tmp_path)
    assert again.vocabulary == ()
    assert again.search("锂电池正极材料", 2) == idx.search("锂电池正极材料", 2)


def _need_side() -> LexicalIndex:
    # Needs as firms write them: each says 希望 … 合作 … 预算, and one technical subject.
    subjects = ["锂电池正极包覆", "视觉缺陷检测", "光伏清洗机器人", "污水脱氮工艺", "轴承寿命预测",
                "涂层附着力", "储能热管理", "焊缝识别", "纺织染色", "芯片封装散热"]
    needs = LexicalIndex()
    needs.build((n, f"我司希望寻求{subjects[n % 10]}技术合作，预算五十万元")
                for n in range(lexical.MIN_QUERY_SIDE))
    return needs


def test_query_weight_demotes_the_words_that_mark_a_need():
    needs = _need_side()
    assert needs.query_weight("希望") == pytest.approx(lexical.WEIGHT_FLOOR)
    assert needs.query_weight("合作") < 0.5
    assert needs.query_weight("包覆") == pytest.approx(0.9)  # one need in ten
    assert needs.query_weight("石墨烯") == 1.0  # no need says it
    # Too few needs to tell which words mark them: nothing is weighted.
    small = LexicalIndex()
    small.build([(1, "希望合作")])
    assert small.query_weight("希望") == 1.0


def test_need_marker_words_no_longer_outrank_the_subject():
    results = LexicalIndex()
    results.build([
        (1, "高镍正极材料的包覆改性方法"),
        (2, "校企合作模式研究：希望与现实"),  # shares only the need-marker words
        (3, "视觉检测系统"),
    ])
    need = "我司希望寻求锂电池正极包覆技术合作"
    plain = results.score(need)
    weighted = results.score(need, query_side=_need_side())
    assert plain.of(np.array([2]))[0] > plain.of(np.array([1]))[0]  # the markers win unweighted
    assert weighted.top(1)[0][0] == 1
    assert weighted.of(np.array([2]))[0] < plain.of(np.array([2]))[0]
    # Words no need holds keep their full weight.
    assert results.score("系统", query_side=_need_side()).of(np.array([3]))[0] == \
        pytest.approx(results.score("系统").of(np.array([3]))[0])
