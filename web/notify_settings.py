"""邮件通知: the signed-in user's e-mail address and mode, and the `send-notifications`
command cron runs (strong-match alerts, then e-mails: `service.email_queue`).

    */5 * * * *  cd /srv/matcher && flask --app web send-notifications
"""

from __future__ import annotations

from typing import Any

import click
from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, url_for
from flask.cli import with_appcontext
from flask_login import login_required

from corpora.notify import EMAIL_MODE_LABELS, EMAIL_MODES
from corpora.schema import FieldErrors
from service import match_alerts
from service.email_prefs import set_email
from service.email_queue import send_notifications
from web.database import get_db, sessions
from web.item_pages import signed_in_user
from web.matching import service
from web.settings import settings_of

bp = Blueprint("notify_settings", __name__)


@bp.route("/account/notifications", methods=["GET", "POST"])
@login_required
def notifications() -> Any:
    user = signed_in_user()
    errors: dict[str, str] = {}
    values = {"email": user.email or "", "email_mode": user.email_mode}
    if request.method == "POST":
        values = {name: request.form.get(name, "") for name in ("email", "email_mode")}
        db = get_db()
        try:
            set_email(db, user, values)
            db.commit()
        except FieldErrors as bad:
            db.rollback()
            errors = bad.errors
        else:
            flash("邮件通知设置已保存")
            return redirect(url_for("notify_settings.notifications"))
    settings = settings_of(current_app)
    return render_template(
        "notify/settings.html", values=values, errors=errors, modes=EMAIL_MODES,
        labels=EMAIL_MODE_LABELS, enabled=settings.email_enabled,
        digest_hour=settings.email_digest_hour), 400 if errors else 200


@click.command("send-notifications")
@with_appcontext
@click.option("--no-alerts", is_flag=True, help="不检查新的强匹配，只发送邮件")
def send_notifications_command(no_alerts: bool) -> None:
    """Strong-match alerts, then queue and send the e-mails (run it from cron)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def alerts(session: Any) -> str:
        return match_alerts.run_alerts(session, service()).summary()

    report = send_notifications(sessions(), settings_of(app),
                                None if no_alerts else alerts)
    click.echo(report.summary())
    if report.unknown:
        raise SystemExit(2)  # cron mails a non-zero exit to its owner: someone should look


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.cli.add_command(send_notifications_command)
