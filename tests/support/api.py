"""Helpers shared by the API tests: the endpoint, a valid need and result, tokens, errors."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from corpora.models import Shortlist, ShortlistLot
from tests.support.web import PASSWORD, Site
from web.database import sessions

API = "/api/v1"
# Deadlines in the past are refused: a valid one is a year ahead, whenever the suite runs.
A_YEAR_AHEAD = (date.today() + timedelta(days=365)).isoformat()
NEW_NEED: dict[str, Any] = {
    "title": "机器人视觉定位算法需求",
    "description": "需要深度学习视觉定位算法用于工业机器人无序抓取，误差小于0.5毫米。",
    "industry": "智能制造", "cooperation_mode": "合作开发", "budget_min": 50,
    "budget_max": 120, "region": "上海松江", "deadline": A_YEAR_AHEAD,
    "contact": "021-00000000 赵经理",
}
NEW_RESULT: dict[str, Any] = {
    "title": "石墨烯导热膜制备方法",
    "abstract": "一种高导热石墨烯散热膜的制备方法，导热系数超过1500 W/mK，用于手机散热。",
    "result_type": "发明专利", "patent_number": "CN202310000001.X", "maturity": "中试",
    "industry": "新材料", "keywords": ["石墨烯", "导热膜", "散热"],
    "inventors": ["张三", "李四"], "transfer_modes": ["技术转让", "许可"],
    "asking_price": 300, "published_on": "2024-05-01",
}

def bearer(site: Site, username: str, *, fresh: bool = False) -> dict[str, str]:
    """Authorization headers for `username`. Issuing a token replaces the user's previous one
    (and writes the audit log), so each user's token is issued once per site unless `fresh`."""
    tokens = site.ids.setdefault("api_tokens", {})
    if fresh or username not in tokens:
        response = site.app.test_client().post(f"{API}/token", json={"username": username,
                                                                      "password": PASSWORD})
        assert response.status_code == 200, response.get_data(as_text=True)
        tokens[username] = {"Authorization": f"Bearer {response.get_json()['token']}"}
    return tokens[username]


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["status"] == status and error["message"]
    return error


def need_id(site: Site, title: str = "工业机器人视觉抓取精度提升") -> int:
    return site.ids["need"][title]


def result_id(site: Site, title: str = "基于深度学习的机器人视觉定位方法") -> int:
    return site.ids["result"][title]


def add_shortlist(site: Site) -> int:
    with site.app.app_context(), sessions()() as db:
        shortlist = Shortlist(title="2025 松江成果拍卖会", event_date=date(2025, 11, 20),
                              note="首批拍品", created_by_id=site.ids["user"]["officer"])
        shortlist.lots = [
            ShortlistLot(result_id=result_id(site), position=1, reserve_price=80.0, note="起拍"),
            ShortlistLot(result_id=result_id(site, "抗体制剂稳定配方"), position=2),
        ]
        db.add(shortlist)
        db.commit()
        return shortlist.id
