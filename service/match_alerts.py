"""New strong matches, told to both sides once: the firm owning an open need hears of a
result the engine rates 强 or 较强 for it, the office owning the active result hears of the
need.

The pairs come from the matching service's coverage (each open need's top K, rated, with hubs
filtered: `MatchService.refresh_coverage`), not from a search of their own. `match_alerts`
remembers every pair announced, so a pair is told once however long it stays strong (and
again never, even after it drops out and comes back).

The first run on a database (`match_alert_runs` empty) records the pairs that are strong
already without telling anyone: they are not new to this feature's users, and announcing
every existing pair at once would bury the inbox (on the demo, one notification per pair for
each of the firm's and the office's users). Every later run announces each pair not seen.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corpora.connections import Notification
from corpora.models import Need, Result, User
from corpora.notify import MatchAlert, MatchAlertRun
from corpora.sides import MATCHABLE_STATUS
from matcher.strength import STRONG_LABELS
from service.matching import Coverage, MatchService

KIND = "strong_match"
TITLE_SHOWN = 60


@dataclass(frozen=True)
class AlertReport:
    pairs: int = 0  # new strong pairs found
    notifications: int = 0  # notifications written
    seeded: int = 0  # pairs recorded silently by the first run
    first_run: bool = False

    def summary(self) -> str:
        if self.first_run:
            return f"首次运行：记录了已有的 {self.seeded} 对强匹配（不发通知）"
        return f"新的强匹配 {self.pairs} 对，写入通知 {self.notifications} 条"


def strong_pairs(coverage: Coverage) -> dict[tuple[int, int], str]:
    """(need id, result id) → label, for the coverage's pairs rated 强 or 较强."""
    return {(need, result): strength.label
            for result, needs in coverage.strength_of.items()
            for need, strength in needs.items() if strength.label in STRONG_LABELS}


def run_alerts(session: Session, svc: MatchService) -> AlertReport:
    """Announce the strong pairs not announced yet (see the module); commits."""
    return announce(session, strong_pairs(svc.refresh_coverage()))


def announce(session: Session, pairs: dict[tuple[int, int], str]) -> AlertReport:
    first_run = not session.scalar(select(exists().select_from(MatchAlertRun)))
    known = {(need, result) for need, result in session.execute(
        select(MatchAlert.need_id, MatchAlert.result_id))}
    new = {pair: label for pair, label in pairs.items() if pair not in known}
    if first_run:
        session.add_all(MatchAlert(need_id=n, result_id=r, label=label)
                        for (n, r), label in new.items())
        session.add(MatchAlertRun(seeded=len(new)))
        try:
            session.commit()
        except IntegrityError:  # a concurrent first run recorded them
            session.rollback()
        return AlertReport(seeded=len(new), first_run=True)
    written = told = 0
    for (need_id, result_id), label in sorted(new.items()):
        need, result = session.get(Need, need_id), session.get(Result, result_id)
        if need is None or result is None or need.status != MATCHABLE_STATUS["need"] \
                or result.status != MATCHABLE_STATUS["result"]:
            continue  # closed or withdrawn since the coverage was computed
        try:
            with session.begin_nested():
                # The unique pair first: a concurrent run that wrote it already wins, and
                # this one tells nobody.
                session.add(MatchAlert(need_id=need_id, result_id=result_id, label=label))
                session.flush()
                written += _tell(session, need, result, label)
        except IntegrityError:
            continue
        session.commit()
        told += 1
    session.add(MatchAlertRun(pairs=told, notifications=written))
    session.commit()
    return AlertReport(pairs=told, notifications=written)


def _tell(session: Session, need: Need, result: Result, label: str) -> int:
    texts = {
        ("firm", need.organisation_id):
            f"新成果「{result.title[:TITLE_SHOWN]}」与您的需求「{need.title[:TITLE_SHOWN]}」"
            f"{label}匹配",
        ("office", result.organisation_id):
            f"新需求「{need.title[:TITLE_SHOWN]}」与您的成果「{result.title[:TITLE_SHOWN]}」"
            f"{label}匹配",
    }
    count = 0
    for (role, organisation_id), text in texts.items():
        users = session.scalars(select(User.id).where(
            User.organisation_id == organisation_id, User.role == role,
            User.is_active.is_(True))).all()
        for user_id in users:
            session.add(Notification(user_id=user_id, kind=KIND, need_id=need.id,
                                     result_id=result.id, text=text[:500]))
        count += len(users)
    return count
