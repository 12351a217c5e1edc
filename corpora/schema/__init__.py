"""The import schema: which columns a needs or results file may have, and how each is checked.

Column names are accepted in Chinese or English (see `FieldSpec.aliases`); docs/import-format.md
is the user-facing description of the same table, kept in step by a test. Validation is pure
(no database): `validate_values` turns one row's raw values into clean Python values plus a
list of `RowError`s, each with a Chinese message and the field it concerns.

- `corpora.schema.fields`: the fields, their limits and vocabularies, the two side schemas;
- `corpora.schema.parsers`: one raw value → a clean value (text, number, date, choice, list);
- `corpora.schema.text`: clean-Unicode checks and previews of bad values;
- `corpora.schema.validation`: one row → clean values and `RowError`s;
- `corpora.schema.errors`: `RowError`, `ValueProblem` and `FieldErrors`.
"""

from corpora.schema.errors import FieldErrors, RowError, ValueProblem
from corpora.schema.fields import (
    COOPERATION_MODES,
    EXTERNAL_ID_MAX,
    INVENTORS_MAX_COUNT,
    KEYWORD_MAX,
    KEYWORDS_MAX_COUNT,
    MATURITIES,
    MONEY_MAX,
    NAME_MAX,
    NEED_SCHEMA,
    RESULT_SCHEMA,
    RESULT_TYPES,
    SHORT_MAX,
    TEXT_MAX,
    TITLE_MAX,
    FieldKind,
    FieldSpec,
    SideSchema,
    normalise_column,
    schema_for,
)
from corpora.schema.parsers import (
    BadDate,
    DateOutOfRange,
    NoSuchDay,
    is_blank,
    parse_date_text,
    parse_decimal,
    parse_value,
)
from corpora.schema.text import encoding_problem, preview
from corpora.schema.validation import validate_values

__all__ = [
    "COOPERATION_MODES",
    "EXTERNAL_ID_MAX",
    "INVENTORS_MAX_COUNT",
    "KEYWORDS_MAX_COUNT",
    "KEYWORD_MAX",
    "MATURITIES",
    "MONEY_MAX",
    "NAME_MAX",
    "NEED_SCHEMA",
    "RESULT_SCHEMA",
    "RESULT_TYPES",
    "SHORT_MAX",
    "TEXT_MAX",
    "TITLE_MAX",
    "BadDate",
    "DateOutOfRange",
    "FieldErrors",
    "FieldKind",
    "FieldSpec",
    "NoSuchDay",
    "RowError",
    "SideSchema",
    "ValueProblem",
    "encoding_problem",
    "is_blank",
    "normalise_column",
    "parse_date_text",
    "parse_decimal",
    "parse_value",
    "preview",
    "schema_for",
    "validate_values",
]
