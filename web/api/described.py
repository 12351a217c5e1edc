"""Operations whose views register their own routes (`bp.post(...)` rather than
`web.api.contract.operation`), described here so that the OpenAPI document lists every route.

The upload's checks are the upload page's own (`web.results.import_upload`, called by
`web.api.imports`): a multipart form, not a JSON body, so there is no body model to check it
with; `ResultsUpload` says what the form holds.
"""

from __future__ import annotations

from web.api import answers, imports
from web.api.contract import describe
from web.api.params import ResultsUpload

describe(imports.import_results, "POST", "/results/import", tag="成果",
         summary="批量导入成果（CSV 或 XLSX）", answer=answers.ImportOut, body=ResultsUpload,
         body_media="multipart/form-data", errors=(403, 409, 413),
         error_answers={400: answers.ImportRefusal},
         description="绑定高校或院所的技术转移办公室账号，导入本单位的成果，与“批量上传”页相同："
         "全部合格才导入，有一行不合格则整个文件不导入（400，rejected 列出问题）。"
         "按编号（external_id）已存在的成果会被更新。")
