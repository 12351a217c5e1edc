"""A need page's time with a freshly posted need, on the demo with the real model.

    python benchmarks/need_page.py [--home /tmp/g60-page] [--rounds 5]

Sets the demo up in `--home` (`flask --app web setup-demo`: the first run encodes the demo
corpus, minutes; later runs reuse it), then, in this process through Flask's test client
(no network, one thread: the page's own cost), signs in as the demo firm, posts each of the
fresh needs below (written for this benchmark, across the G60 industries, a third of them
needs the corpus cannot answer), and loads each need's page `--rounds` times. The target
(issue 13): p95 under 300 ms once the need is encoded; the post, which encodes it, is timed
apart. Printed beside it, measured in the same run: the demo's own needs' pages, and the fresh
needs' pages with the hub discount off (the ranking step this issue added that costs most).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_P95_MS = 300.0

FRESH_NEEDS = [
    (
        '纺织面料疵点在线检测',
        '我司织造车间需要对坯布表面的断经、断纬、油污等疵点进行在线识别，布速每分'
        '钟60米，希望漏检率低于1%，可与现有验布机对接。',
    ),
    (
        '多品种小批量车间排产优化',
        '机加工车间有40台设备、300种零件，订单插单频繁，希望有排产算法在10'
        '分钟内给出交期最优的作业计划，并能与MES对接。',
    ),
    (
        '抗体制剂高浓度黏度降低',
        '我司皮下注射单抗制剂浓度需提高到150mg/mL，目前黏度过高无法推注，'
        '希望获得降低黏度的辅料配方或工艺。',
    ),
    (
        '动力电池热失控早期预警',
        '储能电站需要在电芯热失控前数分钟给出预警，希望结合气体、温度与电压信号的'
        '监测方法，误报率低。',
    ),
    (
        '晶圆清洗后颗粒残留控制',
        '12英寸晶圆化学机械抛光后清洗存在颗粒残留，希望改进清洗液配方与工艺，颗'
        '粒数降低50%以上。',
    ),
    (
        '农业大棚水肥一体化控制',
        '蔬菜种植基地希望建设水肥一体化灌溉系统，根据土壤墒情和作物需求自动配比施'
        '肥，节水30%。',
    ),
    (
        '工业机器人焊缝视觉跟踪',
        '焊装线需要激光视觉焊缝跟踪，焊接速度1米每分钟时跟踪误差小于0.2毫米，'
        '适应反光工件。',
    ),
    (
        '新能源汽车电机控制器散热',
        '800V电机控制器功率模块温升过高，希望获得双面水冷或相变散热方案，结温'
        '降低15℃。',
    ),
    (
        '医用导管表面亲水涂层',
        '我司生产介入导管，需要耐久的亲水润滑涂层，摩擦系数低于0.05，通过生物'
        '相容性测试。',
    ),
    (
        '二氧化碳捕集吸收剂',
        '燃煤电厂烟气二氧化碳捕集能耗高，希望获得低再生能耗的新型胺类或相变吸收剂'
        '。',
    ),
    (
        '卫星遥感影像地物分类',
        '需要对高分辨率遥感影像进行耕地、建设用地自动分类，精度90%以上，处理省'
        '级数据。',
    ),
    (
        '餐饮门店排班小程序',
        '连锁餐饮门店希望有员工排班与考勤小程序，支持手机打卡和工资自动核算。',
    ),
    (
        'Lithium battery cathode coating',
        'We need a surface coating process fo'
        'r high-nickel NCM cathode particles '
        'that improves cycle life at 45 °C; p'
        'ilot scale, licence or joint develop'
        'ment.',
    ),
    (
        'Machine vision for textile defects',
        'Our weaving mill looks for an online fabric defect inspection system for grey cl'
        'oth at 60 m/min with a miss rate under 1%.',
    ),
    (
        '光伏组件隐裂检测',
        '光伏组件产线需要电致发光图像的隐裂自动识别，节拍每片3秒，替代人工目检。',
    ),
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def timed_gets(client, paths: list[str], rounds: int) -> list[float]:  # noqa: ANN001
    times = []
    for _ in range(rounds):
        for path in paths:
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"GET {path}: {response.status_code}")
    return times


def report(name: str, times: list[float]) -> None:
    print(f"{name:<44} n={len(times):>4}  p50 {statistics.median(times):7.1f} ms  "
          f"p95 {percentile(times, 0.95):7.1f} ms  max {max(times):7.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default="/tmp/g60-page")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    env = {**os.environ, "MATCHER_HOME": args.home}
    print(f"setting up the demo in {args.home} (the first run encodes the corpus) ...",
          flush=True)
    subprocess.run([sys.executable, "-m", "flask", "--app", "web", "setup-demo"], env=env,
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)

    from sqlalchemy import select

    from corpora.models import Need
    from service.demo import DEMO_PASSWORD
    from web import create_app
    from web.database import get_db
    from web.matching import service

    app = create_app({"MATCHER_HOME": args.home, "WTF_CSRF_ENABLED": False})
    client = app.test_client()
    login = client.post("/login", data={"username": "firm", "password": DEMO_PASSWORD})
    if login.status_code != 302:
        raise SystemExit(f"sign-in failed: {login.status_code}")
    with app.app_context():
        service()  # loads the model and the indexes before anything is timed
        demo_needs = [f"/needs/{n}" for n in get_db().scalars(
            select(Need.id).where(Need.status == "open")
            .order_by(Need.id).limit(len(FRESH_NEEDS)))]

    posts, fresh = [], []
    for title, description in FRESH_NEEDS:
        started = time.perf_counter()
        response = client.post("/needs/new", data={
            "title": title, "description": description, "industry": "",
            "cooperation_mode": "合作开发"})
        posts.append((time.perf_counter() - started) * 1000)
        found = re.search(r"/needs/(\d+)", response.headers.get("Location", ""))
        if response.status_code != 302 or not found:
            raise SystemExit(f"posting {title!r}: {response.status_code}")
        fresh.append(f"/needs/{found.group(1)}")
    timed_gets(client, fresh + demo_needs, 1)  # first loads: each need is encoded once

    print(f"\n{len(FRESH_NEEDS)} fresh needs, {len(demo_needs)} demo needs, "
          f"{args.rounds} rounds each; target p95 < {TARGET_P95_MS:.0f} ms")
    report("post a fresh need (encodes it)", posts)
    fresh_times = timed_gets(client, fresh, args.rounds)
    report("fresh need pages", fresh_times)
    report("demo need pages (baseline)", timed_gets(client, demo_needs, args.rounds))
    with app.app_context():
        matcher = service().matcher
        weight, matcher.hub_weight = matcher.hub_weight, 0.0
        try:
            report("fresh need pages, hub discount off", timed_gets(client, fresh, args.rounds))
        finally:
            matcher.hub_weight = weight
    p95 = percentile(fresh_times, 0.95)
    print(f"\nfresh need pages p95 {p95:.1f} ms: "
          f"{'target met' if p95 < TARGET_P95_MS else 'TARGET MISSED'}")
    return 0 if p95 < TARGET_P95_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
