import numpy as np
import pytest

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
    path = tmp_path / "tokens.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="truncated"):
        LexicalIndex.load(tmp_path)


def test_idf_prefers_rare_terms(index):
    assert index.idf("光伏") > index.idf("方法")


def test_explanation_terms_skip_stopwords_and_single_chars():
    terms = explanation_terms("本发明公开了一种锂离子电池的制备方法")
    assert {"锂离子", "电池", "制备"} <= terms
    assert "方法" not in terms and "的" not in terms and "本发明" not in terms
