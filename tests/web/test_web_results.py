"""Offices' workflows through HTTP: list one by one or in bulk, edit, withdraw, interest;
officers' coverage page; accounts administration."""

from __future__ import annotations

import io

from openpyxl import Workbook
from sqlalchemy import func, select

from corpora.models import Result, User
from tests.support.web import Site
from web.database import sessions
from web.matching import service

NEW_RESULT = {
    "title": "石墨烯复合散热膜制备方法",
    "abstract": "一种石墨烯复合散热膜，导热系数大于1500 W/mK。",
    "result_type": "发明专利", "patent_number": "CN202410000001.X", "maturity": "中试",
    "industry": "新材料", "keywords": "石墨烯；散热膜", "inventors": "张三、李四",
    "asking_price": "80", "published_on": "2025-03-01",
}
GOOD_CSV = (
    "成果名称,摘要,成果类型,成熟度,关键词,转化方式,意向价格\n"
    "柔性钙钛矿太阳能电池,一种柔性钙钛矿太阳能电池的封装方法,发明专利,小试,钙钛矿;封装,许可,50\n"
    "碳化硅功率模块封装,碳化硅功率模块的低感封装结构,实用新型,中试,碳化硅,技术转让,30\n"
)
BAD_CSV = GOOD_CSV + "缺摘要的成果,,发明专利,小试,,,\n" + "价格不对,摘要,论文,实验室,,,很贵\n"


def _count_results(site: Site) -> int:
    with site.app.app_context(), sessions()() as db:
        return db.scalar(select(func.count()).select_from(Result))


def test_office_lists_edits_and_withdraws_a_result(site: Site) -> None:
    client = site.client("office_u1")
    modes = {"transfer_modes": ["许可", "作价入股"]}
    response = client.post("/results/new", data=NEW_RESULT | modes)
    assert response.status_code == 302, response.get_data(as_text=True)
    result_id = int(response.headers["Location"].split("/")[-1])
    with site.app.app_context(), sessions()() as db:
        result = db.get(Result, result_id)
        assert result.keyword_list == ["石墨烯", "散热膜"]
        assert result.inventor_list == ["张三", "李四"]
        assert result.transfer_mode_list == ["许可", "作价入股"]
        assert result.organisation.name == "示例理工大学"
    firm = site.client("firm_a")
    hits = firm.get("/search", query_string={"q": "石墨烯 散热膜"}).get_data(as_text=True)
    assert "石墨烯复合散热膜制备方法" in hits
    edited = client.post(f"/results/{result_id}/edit",
                         data=NEW_RESULT | {"title": "石墨烯复合散热膜（第二代）"})
    assert edited.status_code == 302
    assert "石墨烯复合散热膜（第二代）" in firm.get(
        "/search", query_string={"q": "石墨烯 散热膜"}).get_data(as_text=True)
    client.post(f"/results/{result_id}/status", data={"status": "withdrawn", "confirm": "1"})
    assert "石墨烯复合散热膜" not in firm.get(
        "/search", query_string={"q": "石墨烯 散热膜"}).get_data(as_text=True)


def test_bad_result_form_names_each_field(sqlite_site: Site) -> None:
    client = sqlite_site.client("office_u1")
    before = _count_results(sqlite_site)
    response = client.post("/results/new", data=NEW_RESULT | {
        "abstract": " ", "asking_price": "-5", "result_type": "外星科技",
        "title": "长" * 201})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    for name in ("title", "abstract", "asking_price", "result_type"):
        assert f'data-field="{name}"' in page, name
    assert _count_results(sqlite_site) == before


def test_result_page_shows_needs_it_answers(sqlite_site: Site) -> None:
    result_id = sqlite_site.ids["result"]["基于深度学习的机器人视觉定位方法"]
    page = sqlite_site.client("office_u1").get(f"/results/{result_id}").get_data(as_text=True)
    assert page.index("工业机器人视觉抓取精度提升") < page.index("相似成果")


def test_upload_with_bad_rows_imports_nothing_and_lists_every_bad_row(site: Site) -> None:
    client = site.client("office_u1")
    before = _count_results(site)
    response = client.post("/results/upload", data={
        "file": (io.BytesIO(BAD_CSV.encode("utf-8")), "成果.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "整个文件未导入" in page
    assert "第 4 行" in page and "第 5 行" in page and "第 2 行" not in page
    assert _count_results(site) == before


def test_good_upload_imports_and_is_matchable(site: Site) -> None:
    client = site.client("office_u1")
    response = client.post("/results/upload", data={
        "file": (io.BytesIO(GOOD_CSV.encode("utf-8")), "成果.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 200
    assert "新增 2" in response.get_data(as_text=True)
    hits = site.client("firm_a").get("/search", query_string={"q": "钙钛矿 封装"})
    assert "柔性钙钛矿太阳能电池" in hits.get_data(as_text=True)
    # The same file again creates nothing new.
    again = client.post("/results/upload", data={
        "file": (io.BytesIO(GOOD_CSV.encode("utf-8")), "成果.csv")},
        content_type="multipart/form-data")
    assert "新增 0" in again.get_data(as_text=True)


def test_upload_is_locked_to_the_offices_institution(sqlite_site: Site) -> None:
    csv = "成果名称,摘要,单位名称\n他校成果,一段摘要,示例医科大学\n"
    response = sqlite_site.client("office_u1").post("/results/upload", data={
        "file": (io.BytesIO(csv.encode("utf-8")), "x.csv")}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "只能导入本单位" in response.get_data(as_text=True)


def test_xlsx_upload(sqlite_site: Site) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["成果名称", "摘要", "成果类型"])
    sheet.append(["氢燃料电池双极板", "一种金属双极板的涂层工艺", "发明专利"])
    data = io.BytesIO()
    book.save(data)
    data.seek(0)
    response = sqlite_site.client("office_u1").post(
        "/results/upload", data={"file": (data, "成果.xlsx")}, content_type="multipart/form-data")
    assert response.status_code == 200 and "新增 1" in response.get_data(as_text=True)


def test_upload_refuses_wrong_types_and_oversized_files(sqlite_site: Site) -> None:
    client = sqlite_site.client("office_u1")
    wrong = client.post("/results/upload", data={"file": (io.BytesIO(b"x"), "a.exe")},
                        content_type="multipart/form-data")
    assert wrong.status_code == 400 and "不支持的文件类型" in wrong.get_data(as_text=True)
    empty = client.post("/results/upload", data={}, content_type="multipart/form-data")
    assert empty.status_code == 400
    # The body is built by hand: the test client would spool a large form to a temporary
    # file of its own and leave it open.
    boundary = "xyzBOUNDARY"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode() + \
        b"a" * (6 * 1024 * 1024) + f"\r\n--{boundary}--\r\n".encode()
    big = client.post("/results/upload", data=body,
                      content_type=f"multipart/form-data; boundary={boundary}")
    assert big.status_code == 413
    assert "过大" in big.get_data(as_text=True)


def test_coverage_counts_open_needs_answered(sqlite_site: Site) -> None:
    officer = sqlite_site.client("officer")
    page = officer.get("/results/coverage").get_data(as_text=True)
    # The fake encoder rates every seeded pair 弱: no result answers a need well, and every
    # open need is listed as unanswered, under its industry, with the best strength it got.
    listed, unanswered = page.split('id="unanswered"')
    assert "基于深度学习的机器人视觉定位方法" not in listed and "能较好解决的开放需求" in listed
    for need_id in sqlite_site.ids["need"].values():
        assert f'href="/needs/{need_id}"' in unanswered
    assert "生物医药（1 条）" in unanswered and "最好匹配：弱" in unanswered
    only = officer.get("/results/coverage", query_string={"industry": "生物医药"})
    assert "智能制造（" not in only.get_data(as_text=True)
    with sqlite_site.app.app_context():
        service().coverage_min_label = "弱"  # every top-K pair counts, as before strength
    page = officer.get("/results/coverage").get_data(as_text=True)
    assert "基于深度学习的机器人视觉定位方法" in page.split('id="unanswered"')[0]
    assert "每条开放需求都至少有一件成果能较好解决（弱以上）" in page


def test_admin_creates_and_disables_accounts(sqlite_site: Site) -> None:
    admin = sqlite_site.client("admin")
    weak = admin.post("/admin/users", data={"username": "newfirm", "role": "firm",
                                            "organisation": "甲智能装备有限公司",
                                            "password": "short"})
    assert weak.status_code == 400 and 'data-field="password"' in weak.get_data(as_text=True)
    unbound = admin.post("/admin/users", data={"username": "newoffice", "role": "office",
                                               "password": "Long-enough-123"})
    assert unbound.status_code == 400
    made = admin.post("/admin/users", data={"username": "newfirm", "role": "firm",
                                            "organisation": "甲智能装备有限公司",
                                            "password": "Long-enough-123"})
    assert made.status_code == 302
    login = sqlite_site.app.test_client().post(
        "/login", data={"username": "newfirm", "password": "Long-enough-123"})
    assert login.status_code == 302
    with sqlite_site.app.app_context(), sessions()() as db:
        user_id = db.scalar(select(User.id).where(User.username == "newfirm"))
    admin.post(f"/admin/users/{user_id}/active", data={"active": "0", "confirm": "1"})
    refused = sqlite_site.app.test_client().post(
        "/login", data={"username": "newfirm", "password": "Long-enough-123"})
    assert refused.status_code == 401
