"""`python -m service demo`: the whole pipeline on the demo corpus, without the site.

Model, database migration, demo import, demo accounts and index sync each skip the work that
is already done (the same `set_up_demo` as `flask --app web setup-demo`), then a sample need
is matched and printed with its explanations.

`python -m service embed-bulk --from-db | --jsonl PATH | --parquet PATH`: encode many texts on
Ray into the embedding cache, then sync the index (`service.bulk_embedding`).

`python -m service export-judgments OUT_DIR`: firms' 相关/不相关 marks as a judged set that
`python -m matcher evaluate OUT_DIR` scores (`service.judgments`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from corpora.db import create_engine_for, make_sessionmaker, upgrade
from matcher.types import Match
from service.bulk_embedding import add_parser as add_embed_bulk_parser
from service.bulk_embedding import run_from_args as run_embed_bulk
from service.composition import build_service
from service.demo import DemoError, set_up_demo
from service.judgments import export_judgments
from service.matching import MatchService
from settings import Settings

SAMPLE_QUERY = (
    "我公司生产动力锂电池，高镍三元正极材料在循环500次后容量衰减超过20%，"
    "希望找到能提高正极材料循环稳定性的包覆或掺杂改性技术，可合作开发。"
)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _print_matches(title: str, matches: list[Match], svc: MatchService) -> None:
    print(f"\n{title}")
    items = {item.id: item for item in svc.items("result")}
    for rank, match in enumerate(matches, start=1):
        item = items[match.id]
        exp = match.explanation
        terms = "、".join(t.term for t in exp.shared_terms[:6]) if exp else ""
        print(f"{rank:>2}. [{match.score:.3f}] {item.title[:60]}"
              f"  ({item.facets.get('result_type', '')}, {item.facets.get('institution', '')})")
        if exp:
            print(f"    语义 {exp.dense_score:.3f} · 关键词 {exp.lexical_score:.2f}"
                  f"{' · 共同术语: ' + terms if terms else ''}"
                  f"{' · 一致: ' + ', '.join(exp.facets_agreed) if exp.facets_agreed else ''}")


def run_demo(settings: Settings, query: str | None = None) -> int:
    started = time.perf_counter()
    _say(f"==> 数据库: {settings.database_url}")
    upgrade(settings.database_url)
    engine = create_engine_for(settings.database_url)
    sessions = make_sessionmaker(engine)
    built: list[MatchService] = []

    def service() -> MatchService:
        svc = build_service(settings, sessions=sessions)
        svc.start(sync=False)
        _say(f"    模型 {svc.store.encoder.name}")
        built.append(svc)
        return svc

    try:
        set_up_demo(sessions, settings.datasets, service, progress=True, say=_say)
    except DemoError as error:
        _say(f"error: {error}")
        return 1
    svc = built[0]
    _say(f"    准备完成, 用时 {time.perf_counter() - started:.1f}s")

    text = query or SAMPLE_QUERY
    print(f"查询: {text}")
    _print_matches("最匹配的科技成果:", svc.search(text, side="result", k=5), svc)
    needs = {item.id: item for item in svc.items("need")}
    if needs:
        need = needs[min(needs)]
        print(f"\n示例需求: {need.title}")
        matches = svc.store.matcher.match_item(need, target="result", k=5)
        _print_matches("该需求的匹配成果:", matches, svc)
    svc.flush()
    engine.dispose()
    return 0


def run_export(settings: Settings, out_dir: Path) -> int:
    engine = create_engine_for(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            exported = export_judgments(session, out_dir)
    finally:
        engine.dispose()
    print(f"{out_dir}: {exported.queries} needs, {exported.documents} results, "
          f"{exported.relevant} 相关 (grade 2) and {exported.not_relevant} 不相关 (grade 0)")
    if not exported.relevant:
        _say("note: no 相关 mark yet, so `python -m matcher evaluate` has nothing to score")
    return 0


EXPORT_HELP = (
    "write firms' marks as a judged set (corpus.jsonl, queries.jsonl, qrels.tsv: 相关 = 2, "
    "不相关 = 0) for `python -m matcher evaluate OUT_DIR`; the corpus holds only the marked "
    "results, so that scores a re-ranking of the judged pairs, not retrieval from the whole "
    "platform")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="set up the demo and match a sample need")
    demo.add_argument("--query", default=None, help="free-text need to match")
    demo.add_argument("--model", default=None, help="model folder, or 'fake' (default: e5)")
    export = commands.add_parser("export-judgments", help=EXPORT_HELP, description=EXPORT_HELP)
    export.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    add_embed_bulk_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    if args.command == "export-judgments":
        return run_export(settings, args.out_dir)
    if args.command == "embed-bulk":
        return run_embed_bulk(settings, args)
    if args.model:
        settings = settings.with_overrides({"MATCHER_MODEL": args.model})
    return run_demo(settings, args.query)
