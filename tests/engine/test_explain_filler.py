"""What an explanation leaves out (filler: function words, words common on a side) and the
terms on which a need and a result clash."""

from embeddings.fake import FakeEncoder
from matcher.explain import MIN_SIDE_DOCS, clashed_facets, common_on_a_side, shared_terms
from matcher.retriever import Matcher
from matcher.tokenize import function_word
from matcher.types import FacetClash, Item


def flat_idf(term: str) -> float:
    return 2.0


class Side:
    """A side's document shares, as `common_on_a_side` reads them."""

    def __init__(self, count: int, shares: dict[str, float]) -> None:
        self._count, self._shares = count, shares

    def count(self) -> int:
        return self._count

    def share(self, term: str) -> float:
        return self._shares.get(term, 0.0)


def test_function_words_are_not_shared_terms():
    terms = [t.term for t in shared_terms("清洗液残留在5微米以上，我们之间对于颗粒的要求",
                                          "颗粒残留在以上范围，我们对于清洗液", flat_idf)]
    assert {"清洗液", "颗粒", "残留"} <= set(terms)
    assert not {"以上", "我们", "对于"} & set(terms)
    # Adverbs and numerals can name the topic: they are not function words.
    assert not function_word("实时") and not function_word("三维")


def test_a_word_common_on_either_side_or_on_both_is_filler():
    needs = Side(200, {"一家": 0.15, "方式": 0.05, "电池": 0.08})
    results = Side(5000, {"涉及": 0.2, "方式": 0.06, "电池": 0.03})
    common = common_on_a_side([needs, results])
    assert common("一家") and common("涉及")  # common on one side
    assert common("方式")  # in more than 4% of both
    assert not common("电池")  # a topic many needs share, rare among results
    assert not common("清洗液")


def test_a_side_too_small_to_tell_is_not_asked():
    few_needs = Side(MIN_SIDE_DOCS - 1, {"电池": 1.0})
    results = Side(5000, {"方式": 0.06})
    common = common_on_a_side([few_needs, results])
    assert not common("电池")
    assert not common("方式")  # 'both' needs two sides that can tell
    assert not common_on_a_side([few_needs])("电池")


def test_shared_terms_leave_out_what_common_says():
    terms = [t.term for t in shared_terms("清洗液方式", "清洗液的方式", flat_idf,
                                          common=lambda t: t == "方式")]
    assert terms == ["清洗液"]


def _results(n: int) -> list[Item]:
    # Every result says 获得; only the first is about 清洗液.
    return [Item(i, "result", f"成果{i}",
                 "本成果获得" + ("清洗液颗粒残留的改进" if i == 0 else "钢结构焊接的改进"),
                 {"cooperation_mode": "技术转让;许可", "asking_price": "80"})
            for i in range(n)]


def test_matcher_explanations_drop_words_common_on_the_result_side():
    matcher = Matcher(None)
    matcher.index_items(_results(40))
    [best] = matcher.search("希望获得清洗液颗粒残留的方案", side="result", k=1, mode="lexical")
    terms = [t.term for t in best.explanation.shared_terms]
    assert "清洗液" in terms and "获得" not in terms


def test_clashes_between_a_need_and_a_result():
    result = Item(1, "result", "t", "x", {"cooperation_mode": "技术转让;许可",
                                           "asking_price": "80"})
    need = {"cooperation_mode": "委托开发", "budget_max": "50"}
    assert clashed_facets(need, result, "need") == (
        FacetClash("cooperation_mode", "委托开发", "技术转让;许可"),
        FacetClash("budget", "50", "80"))
    assert clashed_facets({"cooperation_mode": "许可", "budget_max": "80"}, result, "need") == ()
    assert clashed_facets({}, result, "need") == ()  # free text states no terms
    # From the result's side, the need is the item: the same clash.
    need_item = Item(2, "need", "t", "x", need)
    assert clashed_facets(result.facets, need_item, "result") == \
        clashed_facets(need, result, "need")
    # Two needs do not trade with each other.
    assert clashed_facets(need, need_item, "need") == ()


def test_matched_need_carries_its_clashes():
    matcher = Matcher(FakeEncoder())
    matcher.index_items(_results(4))
    need = Item(100, "need", "清洗液颗粒残留", "清洗液颗粒残留", {"cooperation_mode": "委托开发",
                                                       "budget_max": "50"})
    best = matcher.match_item(need, target="result", k=1)[0]
    assert best.explanation.facets_clashed == (
        FacetClash("cooperation_mode", "委托开发", "技术转让;许可"),
        FacetClash("budget", "50", "80"))
