"""The officers' dashboard: what the platform produced and where it leads, as plain figures.

Every figure is computed for the same filters (`DashboardFilters`: a period on the rows' own
dates, an industry, a G60 city) by a few grouped queries, never one per row, in SQL that
SQLite and PostgreSQL both run. The web layer draws and exports them; nothing here knows
about pages.

What the filters mean, figure by figure (the page says the same):
- needs and results: their own industry, their organisation's city, their created_at;
- anything on a (need, result) pair (matches, marks, requests): the pair is in when its need
  or its result is in the industry and the city; the period is on the mark's or the request's
  created_at, and on the need's created_at for a match;
- "matches" are the pairs the coverage counts (`service.matching.Coverage`): a result in an
  open need's top K, rated at the coverage's threshold (较强) or better;
- auction lots: the result's industry and city; the period on when the outcome was recorded
  (a lot not yet recorded: when it was put on its list).

`office_figures` is the same for one institution's own results: the interest each result
draws (相关 marks), the 对接 requests on it, and the results nobody marked or asked for.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, extract, func, or_, select, true
from sqlalchemy.orm import Session, aliased

from corpora.connections import DECLINE_REASONS, ConnectionRequest
from corpora.models import MatchFeedback, Need, Organisation, Result, ShortlistLot
from service.matching import Coverage

UNSET = "未填写"
# Hours to a first answer, in the buckets the chart shows: (label, upper bound in hours).
ANSWER_BUCKETS: tuple[tuple[str, float], ...] = (
    ("1天内", 24.0), ("1–3天", 72.0), ("3–7天", 168.0), ("7天以上", float("inf")))
FUNNEL_LABELS = {"matches": "较强以上匹配", "marks": "标记相关", "requests": "发起对接",
                 "accepted": "对方接受", "signed": "已签约"}


@dataclass(frozen=True)
class DashboardFilters:
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    industry: str | None = None
    city: str | None = None

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for links to the charts and the download)."""
        values = {"date_from": self.date_from.isoformat() if self.date_from else None,
                  "date_to": self.date_to.isoformat() if self.date_to else None,
                  "industry": self.industry, "city": self.city}
        return {name: value for name, value in values.items() if value}


@dataclass(frozen=True)
class Volume:
    label: str  # an industry, a city or a month (YYYY-MM)
    needs: int
    results: int


@dataclass(frozen=True)
class FunnelStep:
    step: str
    label: str
    count: int
    conversion: float | None  # this step's count over the previous step's; None: first or 0


@dataclass(frozen=True)
class Bucket:
    label: str
    count: int


@dataclass(frozen=True)
class AnswerTime:
    answered: int
    pending: int
    median_hours: float | None
    mean_hours: float | None
    buckets: list[Bucket]


@dataclass(frozen=True)
class Auctions:
    sold: int
    unsold: int
    unrecorded: int
    sold_total: float  # 万元, over the sold lots
    # Σ成交价 / Σ保留价 over the sold lots with a reserve above 0 (as the shortlist's tally)
    ratio: float | None
    with_reserve: int
    reserve_total: float


@dataclass(frozen=True)
class Unanswered:
    industry: str
    open_needs: int
    unanswered: int
    share: float | None


@dataclass(frozen=True)
class Dashboard:
    filters: DashboardFilters
    min_label: str
    top_k: int
    by_industry: list[Volume]
    by_city: list[Volume]
    by_month: list[Volume]
    funnel: list[FunnelStep]
    answer_time: AnswerTime
    decline_reasons: list[Bucket]
    auctions: Auctions
    unanswered: list[Unanswered]


@dataclass(frozen=True)
class ResultInterest:
    result_id: int
    title: str
    industry: str | None
    status: str
    strong_matches: int
    relevant_marks: int
    requests: int
    accepted: int
    signed: int

    @property
    def unasked(self) -> bool:
        return self.relevant_marks == 0 and self.requests == 0


@dataclass(frozen=True)
class OfficeDashboard:
    filters: DashboardFilters
    organisation: str
    min_label: str
    top_k: int
    funnel: list[FunnelStep]
    answer_time: AnswerTime
    results: list[ResultInterest] = field(default_factory=list)

    @property
    def unasked(self) -> list[ResultInterest]:
        return [row for row in self.results if row.unasked]


# --- conditions -------------------------------------------------------------------------------


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def in_period(column: Any, filters: DashboardFilters) -> list[ColumnElement[bool]]:
    """`column` (a timestamp) within the period, both days included."""
    where = []
    if filters.date_from:
        where.append(column >= _start(filters.date_from))
    if filters.date_to:
        where.append(column < _start(filters.date_to + timedelta(days=1)))
    return where


def _side(industry: Any, city: Any, filters: DashboardFilters) -> ColumnElement[bool]:
    where: list[ColumnElement[bool]] = []
    if filters.industry:
        where.append(industry == filters.industry)
    if filters.city:
        where.append(city == filters.city)
    return and_(*where) if where else true()


def _pair_query(base: Select[Any], need_col: Any, result_col: Any, filters: DashboardFilters,
                organisation_id: int | None) -> Select[Any]:
    """`base` restricted to the pairs in the filters: need or result in the industry and
    city; with `organisation_id`, only the pairs on that organisation's results."""
    need, result = aliased(Need), aliased(Result)
    need_org, result_org = aliased(Organisation), aliased(Organisation)
    query = (base.join(need, need.id == need_col).join(result, result.id == result_col)
             .join(need_org, need_org.id == need.organisation_id)
             .join(result_org, result_org.id == result.organisation_id))
    if organisation_id is not None:
        # One institution's view: its own results, the industry filter on them.
        return query.where(result.organisation_id == organisation_id,
                           _side(result.industry, result_org.city, filters))
    if filters.industry or filters.city:
        query = query.where(or_(_side(need.industry, need_org.city, filters),
                                _side(result.industry, result_org.city, filters)))
    return query


# --- needs and results ----------------------------------------------------------------------


def _counts(db: Session, model: type[Need] | type[Result], key: Any,
            filters: DashboardFilters) -> dict[Any, int]:
    query = (select(key, func.count(model.id)).join(Organisation,
                                                    Organisation.id == model.organisation_id)
             .where(_side(model.industry, Organisation.city, filters),
                    *in_period(model.created_at, filters))
             .group_by(key))
    return {row[0]: int(row[1]) for row in db.execute(query)}


def _volumes(needs: dict[Any, int], results: dict[Any, int], order: Iterable[Any] = ()
             ) -> list[Volume]:
    keys = list(dict.fromkeys([*order, *sorted(set(needs) | set(results), key=str)]))
    return [Volume(UNSET if key is None else str(key), needs.get(key, 0), results.get(key, 0))
            for key in keys if needs.get(key, 0) or results.get(key, 0)]


def by_industry(db: Session, filters: DashboardFilters) -> list[Volume]:
    rows = _volumes(_counts(db, Need, Need.industry, filters),
                    _counts(db, Result, Result.industry, filters))
    return sorted(rows, key=lambda row: -(row.needs + row.results))


def by_city(db: Session, filters: DashboardFilters) -> list[Volume]:
    from corpora.industries import G60_CITIES  # the corridor's order, west to east

    return _volumes(_counts(db, Need, Organisation.city, filters),
                    _counts(db, Result, Organisation.city, filters), G60_CITIES)


def _monthly(db: Session, model: type[Need] | type[Result], filters: DashboardFilters
             ) -> dict[str, int]:
    year, month = extract("year", model.created_at), extract("month", model.created_at)
    query = (select(year, month, func.count(model.id))
             .join(Organisation, Organisation.id == model.organisation_id)
             .where(_side(model.industry, Organisation.city, filters),
                    *in_period(model.created_at, filters))
             .group_by(year, month))
    return {f"{int(y):04d}-{int(m):02d}": int(n) for y, m, n in db.execute(query)}


def by_month(db: Session, filters: DashboardFilters) -> list[Volume]:
    needs, results = _monthly(db, Need, filters), _monthly(db, Result, filters)
    return [Volume(month, needs.get(month, 0), results.get(month, 0))
            for month in sorted(set(needs) | set(results))]


# --- the funnel -----------------------------------------------------------------------------


def _match_pairs(db: Session, coverage: Coverage, filters: DashboardFilters,
                 organisation_id: int | None) -> int:
    pairs = [(need_id, result_id) for result_id, needs in coverage.needs_of.items()
             for need_id in needs]
    if not pairs:
        return 0
    need_ids = {need_id for need_id, _ in pairs}
    result_ids = {result_id for _, result_id in pairs}
    # Two grouped reads (the ids' industry, city, date, owner), then the pairs in Python: a
    # pair's side lookups are dictionary hits, not one query per pair.
    needs = {row.id: row for row in db.execute(
        select(Need.id, Need.industry, Organisation.city, Need.created_at)
        .join(Organisation, Organisation.id == Need.organisation_id)
        .where(Need.id.in_(need_ids), *in_period(Need.created_at, filters)))}
    results = {row.id: row for row in db.execute(
        select(Result.id, Result.industry, Organisation.city, Result.organisation_id)
        .join(Organisation, Organisation.id == Result.organisation_id)
        .where(Result.id.in_(result_ids)))}

    def fits(row: Any) -> bool:
        return ((not filters.industry or row.industry == filters.industry)
                and (not filters.city or row.city == filters.city))

    count = 0
    for need_id, result_id in pairs:
        need, result = needs.get(need_id), results.get(result_id)
        if need is None or result is None:
            continue
        if organisation_id is not None:
            if result.organisation_id == organisation_id and fits(result):
                count += 1
        elif fits(need) or fits(result):
            count += 1
    return count


def funnel(db: Session, coverage: Coverage, filters: DashboardFilters,
           organisation_id: int | None = None) -> list[FunnelStep]:
    marks = _pair_query(select(func.count(MatchFeedback.id)), MatchFeedback.need_id,
                        MatchFeedback.result_id, filters, organisation_id).where(
        MatchFeedback.relevant.is_(True), *in_period(MatchFeedback.created_at, filters))
    request = ConnectionRequest
    requests = _pair_query(
        select(func.count(request.id),
               func.coalesce(func.sum(case((request.status == "accepted", 1), else_=0)), 0),
               func.coalesce(func.sum(case((request.stage == "signed", 1), else_=0)), 0)),
        request.need_id, request.result_id, filters, organisation_id).where(
        *in_period(request.created_at, filters))
    made, accepted, signed = db.execute(requests).one()
    counts = {"matches": _match_pairs(db, coverage, filters, organisation_id),
              "marks": int(db.scalar(marks) or 0), "requests": int(made or 0),
              "accepted": int(accepted or 0), "signed": int(signed or 0)}
    steps: list[FunnelStep] = []
    previous: int | None = None
    for step, count in counts.items():
        conversion = count / previous if previous else None
        steps.append(FunnelStep(step, FUNNEL_LABELS[step], count, conversion))
        previous = count
    return steps


# --- answers --------------------------------------------------------------------------------


def _hours(created: datetime, answered: datetime) -> float:
    # SQLite hands back naive datetimes (UTC), PostgreSQL aware ones: compare like with like.
    if (created.tzinfo is None) != (answered.tzinfo is None):
        created, answered = created.replace(tzinfo=None), answered.replace(tzinfo=None)
    return max((answered - created).total_seconds(), 0.0) / 3600


def answer_time(db: Session, filters: DashboardFilters, organisation_id: int | None = None
                ) -> AnswerTime:
    """How long the invited side took to accept or decline, over the requests made in the
    period; those still waiting are counted apart."""
    request = ConnectionRequest
    base = _pair_query(select(request.created_at, request.answered_at, request.status),
                       request.need_id, request.result_id, filters, organisation_id).where(
        *in_period(request.created_at, filters),
        or_(request.answered_at.is_not(None), request.status == "pending"))
    hours: list[float] = []
    pending = 0
    for created, answered, status in db.execute(base):
        if answered is None:
            pending += status == "pending"
        else:
            hours.append(_hours(created, answered))
    buckets, low = [], 0.0
    for label, high in ANSWER_BUCKETS:
        buckets.append(Bucket(label, sum(1 for h in hours if low <= h < high)))
        low = high
    return AnswerTime(len(hours), pending,
                      statistics.median(hours) if hours else None,
                      statistics.fmean(hours) if hours else None, buckets)


def decline_reasons(db: Session, filters: DashboardFilters) -> list[Bucket]:
    request = ConnectionRequest
    query = _pair_query(select(request.decline_reason, func.count(request.id)),
                        request.need_id, request.result_id, filters, None).where(
        request.status == "declined", *in_period(request.created_at, filters)
    ).group_by(request.decline_reason)
    counts = {reason or UNSET: int(n) for reason, n in db.execute(query)}
    listed = [Bucket(reason, counts.pop(reason, 0)) for reason in DECLINE_REASONS]
    return listed + [Bucket(reason, n) for reason, n in sorted(counts.items())]


# --- auctions and gaps ----------------------------------------------------------------------


def auctions(db: Session, filters: DashboardFilters) -> Auctions:
    lot = ShortlistLot
    sold = lot.outcome == "sold"
    reserved = and_(sold, lot.reserve_price > 0, lot.sold_price.is_not(None))

    def total(condition: ColumnElement[bool], column: Any) -> Any:
        return func.coalesce(func.sum(case((condition, column), else_=0)), 0)

    def number(condition: ColumnElement[bool]) -> Any:
        return total(condition, 1)

    period = or_(and_(lot.outcome.is_not(None), *in_period(lot.outcome_at, filters)),
                 and_(lot.outcome.is_(None), *in_period(lot.created_at, filters)))
    query = (select(number(sold), number(lot.outcome == "unsold"), number(lot.outcome.is_(None)),
                    total(sold, func.coalesce(lot.sold_price, 0)), number(reserved),
                    total(reserved, lot.sold_price), total(reserved, lot.reserve_price))
             .join(Result, Result.id == lot.result_id)
             .join(Organisation, Organisation.id == Result.organisation_id)
             .where(_side(Result.industry, Organisation.city, filters), period))
    n_sold, n_unsold, n_open, sold_total, n_reserved, sold_reserved, reserve_total = \
        db.execute(query).one()
    reserve_total = float(reserve_total or 0)
    ratio = float(sold_reserved) / reserve_total if n_reserved and reserve_total else None
    return Auctions(int(n_sold), int(n_unsold), int(n_open), float(sold_total or 0), ratio,
                    int(n_reserved), reserve_total)


def unanswered_by_industry(db: Session, coverage: Coverage, filters: DashboardFilters
                           ) -> list[Unanswered]:
    """Per industry, the open needs the coverage searched and how many of them no result
    answers at its threshold: where offices should look for results."""
    searched, gaps = set(coverage.best_of_need), set(coverage.unanswered())
    query = (select(Need.id, Need.industry).join(Organisation,
                                                  Organisation.id == Need.organisation_id)
             .where(Need.status == "open", _side(Need.industry, Organisation.city, filters),
                    *in_period(Need.created_at, filters)))
    totals: dict[str, list[int]] = {}
    for need_id, industry in db.execute(query):
        if need_id not in searched:
            continue  # not indexed yet: the coverage has no word on it
        counts = totals.setdefault(industry or UNSET, [0, 0])
        counts[0] += 1
        counts[1] += need_id in gaps
    rows = [Unanswered(industry, n, gap, gap / n if n else None)
            for industry, (n, gap) in totals.items()]
    return sorted(rows, key=lambda row: (-row.unanswered, -row.open_needs, row.industry))


def figures(db: Session, coverage: Coverage, filters: DashboardFilters) -> Dashboard:
    """Every figure of the officers' dashboard for `filters`."""
    return Dashboard(filters, coverage.min_label, coverage.top_k, by_industry(db, filters),
                     by_city(db, filters), by_month(db, filters),
                     funnel(db, coverage, filters), answer_time(db, filters),
                     decline_reasons(db, filters), auctions(db, filters),
                     unanswered_by_industry(db, coverage, filters))


# --- one institution ------------------------------------------------------------------------


def result_interest(db: Session, coverage: Coverage, organisation_id: int,
                    filters: DashboardFilters) -> list[ResultInterest]:
    """Each of the organisation's results (in the industry filter) with the 相关 marks and
    the 对接 requests it drew in the period, most asked-for first."""
    results = db.execute(
        select(Result.id, Result.title, Result.industry, Result.status)
        .where(Result.organisation_id == organisation_id,
               Result.industry == filters.industry if filters.industry else true())
        .order_by(Result.id)).all()
    ids = [row.id for row in results]
    if not ids:
        return []
    marks: dict[int, int] = {row[0]: row[1] for row in db.execute(
        select(MatchFeedback.result_id, func.count(MatchFeedback.id))
        .join(Result, Result.id == MatchFeedback.result_id)
        .where(Result.organisation_id == organisation_id, MatchFeedback.relevant.is_(True),
               *in_period(MatchFeedback.created_at, filters))
        .group_by(MatchFeedback.result_id))}
    request = ConnectionRequest
    requested = {row[0]: row[1:] for row in db.execute(
        select(request.result_id, func.count(request.id),
               func.coalesce(func.sum(case((request.status == "accepted", 1), else_=0)), 0),
               func.coalesce(func.sum(case((request.stage == "signed", 1), else_=0)), 0))
        .join(Result, Result.id == request.result_id)
        .where(Result.organisation_id == organisation_id,
               *in_period(request.created_at, filters))
        .group_by(request.result_id))}
    rows = []
    for row in results:
        made, accepted, signed = requested.get(row.id, (0, 0, 0))
        rows.append(ResultInterest(row.id, row.title, row.industry, row.status,
                                   coverage.count(row.id), int(marks.get(row.id, 0)),
                                   int(made), int(accepted), int(signed)))
    return sorted(rows, key=lambda r: (-r.requests, -r.relevant_marks, -r.strong_matches,
                                       r.result_id))


def office_figures(db: Session, coverage: Coverage, organisation_id: int,
                   filters: DashboardFilters) -> OfficeDashboard:
    """The dashboard for one institution's own results (the city filter does not apply:
    the institution has one)."""
    own = DashboardFilters(filters.date_from, filters.date_to, filters.industry, None)
    name = db.scalar(select(Organisation.name).where(Organisation.id == organisation_id))
    return OfficeDashboard(own, name or "", coverage.min_label, coverage.top_k,
                           funnel(db, coverage, own, organisation_id),
                           answer_time(db, own, organisation_id),
                           result_interest(db, coverage, organisation_id, own))


__all__ = ["ANSWER_BUCKETS", "AnswerTime", "Auctions", "Bucket", "Dashboard",
           "DashboardFilters", "FunnelStep", "OfficeDashboard", "ResultInterest", "Unanswered",
           "Volume", "answer_time", "auctions", "by_city", "by_industry", "by_month",
           "decline_reasons", "figures", "funnel", "office_figures", "result_interest",
           "unanswered_by_industry"]
