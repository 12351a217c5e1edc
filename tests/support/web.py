"""A small seeded site for the web tests: two firms, two universities, an officer, an admin.

Every account's password is PASSWORD. Texts are short Chinese needs and results in two
industries, so that matches are predictable with the fake encoder's lexical half.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from corpora.models import Need, Organisation, Result
from service.accounts import NewUser, create_user
from web import create_app
from web.database import sessions

PASSWORD = "Passw0rd-test"

ORGANISATIONS = [
    ("甲智能装备有限公司", "firm", "上海松江", "高新技术企业"),
    ("乙生物医药有限公司", "firm", "嘉兴", "科技小巨人"),
    ("示例理工大学", "university", "上海松江", None),
    ("示例医科大学", "university", "杭州", None),
]
USERS = [
    ("firm_a", "firm", "甲智能装备有限公司"),
    ("firm_b", "firm", "乙生物医药有限公司"),
    ("office_u1", "office", "示例理工大学"),
    ("office_u2", "office", "示例医科大学"),
    ("officer", "officer", None),
    ("admin", "admin", None),
]
NEEDS = [
    ("甲智能装备有限公司", "工业机器人视觉抓取精度提升",
     "我司焊装线上的工业机器人需要基于视觉的无序抓取，目前定位误差2毫米，"
     "希望引入深度学习视觉定位算法，"
     "将抓取误差降到0.5毫米以内。", "智能制造", "合作开发", "13800000001 张经理"),
    ("甲智能装备有限公司", "伺服电机振动抑制",
     "伺服电机在高速换向时振动明显，需要振动抑制控制算法。", "高端装备", "技术转让",
     "13800000002 李工"),
    ("乙生物医药有限公司", "抗体药物稳定性改进",
     "单克隆抗体制剂在储存中出现聚集，希望获得提高抗体制剂稳定性的配方技术。", "生物医药", "许可",
     "13900000003 王博士"),
]
RESULTS = [
    ("示例理工大学", "基于深度学习的机器人视觉定位方法",
     "本发明公开了一种基于深度学习的工业机器人视觉定位方法，用于无序抓取，定位误差小于0.3毫米。",
     "发明专利", "中试", "智能制造", "深度学习;视觉定位;机器人", "技术转让;许可"),
    ("示例理工大学", "伺服系统振动抑制控制器",
     "一种伺服电机振动抑制控制器，采用陷波滤波与自适应控制，降低高速换向振动。",
     "发明专利", "小试", "高端装备", "伺服电机;振动抑制", "技术转让"),
    ("示例理工大学", "锂电池正极材料包覆工艺",
     "一种高镍三元正极材料的包覆改性工艺，提高循环稳定性。", "论文", "实验室", "新能源汽车",
     "锂电池;正极材料", "合作开发"),
    ("示例医科大学", "抗体制剂稳定配方",
     "一种单克隆抗体制剂配方，添加稳定剂抑制储存过程中的聚集，提高抗体制剂稳定性。",
     "发明专利", "中试", "生物医药", "抗体;制剂;稳定性", "许可;作价入股"),
    ("示例医科大学", "肿瘤早筛血液检测方法",
     "基于循环肿瘤DNA甲基化的肿瘤早期筛查方法。", "发明专利", "小试", "生物医药",
     "肿瘤;早筛", "技术转让"),
]


@dataclass
class Site:
    app: Flask
    ids: dict[str, Any] = field(default_factory=dict)

    def client(self, username: str | None = None) -> FlaskClient:
        client = self.app.test_client()
        if username is not None:
            response = client.post("/login", data={"username": username, "password": PASSWORD})
            assert response.status_code == 302, response.get_data(as_text=True)
        return client


def seed(app: Flask) -> dict[str, Any]:
    ids: dict[str, Any] = {"need": {}, "result": {}, "org": {}, "user": {}}
    with app.app_context(), sessions()() as session:
        orgs = {}
        for name, kind, city, tier in ORGANISATIONS:
            org = Organisation(name=name, kind=kind, city=city, tier=tier, is_sample=True)
            session.add(org)
            orgs[name] = org
        session.flush()
        for username, role, org_name in USERS:
            user = create_user(session, NewUser(username, PASSWORD, role, username, org_name))
            ids["user"][username] = user.id
        for org_name, title, text, industry, mode, contact in NEEDS:
            need = Need(organisation=orgs[org_name], title=title, description=text,
                        industry=industry, cooperation_mode=mode, contact=contact,
                        status="open")
            session.add(need)
            session.flush()
            ids["need"][title] = need.id
        for org_name, title, text, rtype, maturity, industry, keywords, modes in RESULTS:
            result = Result(organisation=orgs[org_name], title=title, abstract=text,
                            result_type=rtype, maturity=maturity, industry=industry,
                            keywords=keywords, transfer_modes=modes, status="active")
            session.add(result)
            session.flush()
            ids["result"][title] = result.id
        ids["org"] = {name: org.id for name, org in orgs.items()}
        session.commit()
    return ids


def make_site(db_url: str, home: Path, **config: Any) -> Site:
    settings = {"TESTING": True, "MATCHER_HOME": home, "DATABASE_URL": db_url,
                "MATCHER_MODEL": "fake", "SECRET_KEY": "test-secret", **config}
    app = create_app(settings)
    ids = seed(app)
    with app.app_context():
        from web.matching import service

        service()  # build the indexes from the seeded database, as a server start does
    return Site(app, ids)


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token a page's form carries."""
    found = CSRF_INPUT.search(html)
    assert found, "page has no CSRF token"
    return found.group(1)
