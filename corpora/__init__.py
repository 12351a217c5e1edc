"""The platform's records: models, import, the demo corpus.

Importing the package registers every table in `Base.metadata`: the core models, 对接
(`connections`) and the e-mail outbox (`notify`) live in modules of their own, so Alembic, the
dump and `create_all` see them all wherever any part of the package is loaded.
"""

from corpora import connections, models, notify  # noqa: F401
