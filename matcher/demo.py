"""`python -m matcher demo`: the whole pipeline on the demo corpus, resumable.

Model materialisation, database migration, import and indexing each skip the work that is
already done, so a second run goes straight to answering the query.
"""

from __future__ import annotations

import sys
import time

from corpora.db import create_engine_for, default_url, make_sessionmaker, upgrade
from corpora.demo import build_demo
from embeddings.cache import CachedEncoder, EmbeddingCache
from embeddings.loader import load_encoder
from embeddings.paths import matcher_home, shared_dir
from matcher.indexing import open_store
from matcher.types import Match

SAMPLE_QUERY = (
    "我公司生产动力锂电池，高镍三元正极材料在循环500次后容量衰减超过20%，"
    "希望找到能提高正极材料循环稳定性的包覆或掺杂改性技术，可合作开发。"
)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _print_matches(title: str, matches: list[Match], store) -> None:
    print(f"\n{title}")
    coll = store.matcher.collections["result"]
    for rank, match in enumerate(matches, start=1):
        item = coll.items[match.id]
        exp = match.explanation
        terms = "、".join(t.term for t in exp.shared_terms[:6]) if exp else ""
        print(f"{rank:>2}. [{match.score:.3f}] {item.title[:60]}"
              f"  ({item.facets.get('result_type', '')}, {item.facets.get('institution', '')})")
        if exp:
            print(f"    语义 {exp.dense_score:.3f} · 关键词 {exp.lexical_score:.2f}"
                  f"{' · 共同术语: ' + terms if terms else ''}"
                  f"{' · 一致: ' + ', '.join(exp.facets_agreed) if exp.facets_agreed else ''}")


def run_demo(query: str | None = None, encoder_spec: str | None = None) -> int:
    home = matcher_home()
    started = time.perf_counter()
    _say("==> 1/4 模型: 加载/生成嵌入模型")
    encoder = CachedEncoder(load_encoder(encoder_spec),
                            EmbeddingCache(home / "cache" / "embeddings.sqlite"))
    _say(f"    {encoder.name}")

    url = default_url()
    _say(f"==> 2/4 数据库: {url}")
    upgrade(url)
    engine = create_engine_for(url)
    sessions = make_sessionmaker(engine)

    _say("==> 3/4 演示语料: 导入示例成果与企业需求")
    with sessions() as session:
        report = build_demo(session, shared_dir(), progress=True)
        session.commit()
    _say("    " + report.summary().replace("\n", "\n    "))

    _say("==> 4/4 索引: 与数据库比对并增量更新")
    store, reports = open_store(home, encoder, sessions, progress=True)
    for sync in reports:
        _say("    " + sync.summary())
    _say(f"    准备完成, 用时 {time.perf_counter() - started:.1f}s")

    text = query or SAMPLE_QUERY
    print(f"查询: {text}")
    _print_matches("最匹配的科技成果:", store.matcher.search(text, side="result", k=5), store)

    needs = store.matcher.collections["need"]
    if needs.items:
        need = needs.items[min(needs.items)]
        print(f"\n示例需求: {need.title}")
        matches = store.matcher.match_item(need, target="result", k=5)
        _print_matches("该需求的匹配成果:", matches, store)
    engine.dispose()
    return 0
