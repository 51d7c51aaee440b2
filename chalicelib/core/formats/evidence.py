"""The evidence report (:mod:`chalicelib.core.evidence`) as CSV and as a printable page. Pure.

Both are made from the report's body alone, in its order, so the same records give the same
bytes. The CSV is one row per volume × instance and ends with a line ``sha256,<hex>``: the sha256
of every byte before that line, so a copy handed to an auditor can be checked on its own. The page
is plain HTML (no script) with its style inline, printable as it is.
"""

from __future__ import annotations

import csv
import io
from html import escape
from typing import Any

from chalicelib.core.evidence import CONTROLS, sha256

COLUMNS = ("app", "proc", "instance", "volume", "mode", "nodes", "schedule", "schedule_pushed",
           "window_from", "window_to", "target_rpo_hours", "achieved_rpo_hours",
           "achieved_rpo_from", "achieved_rpo_to", "since_last_good_hours", "last_good_at",
           "last_good_bytes", "due_runs", "succeeded_runs", "success_percent", "last_drill_at",
           "last_drill_outcome", "last_verified_drill_at", "throughput_mib_s",
           "predicted_rto_minutes", "exceptions", "exception_kinds", *CONTROLS, "app_result")


def _get(data: Any, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _cell(value: Any) -> str:
    """A CSV cell: empty for none; text that a spreadsheet would run as a formula is quoted
    with a leading apostrophe (a volume or reason comes from users)."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def rows(body: dict[str, Any]) -> list[list[str]]:
    """One row per item of every app of the report, :data:`COLUMNS` in order."""
    out = []
    window = body["window"]
    for app in body["apps"]:
        for item in app["items"]:
            kinds = item["exception_counts"]
            values = [
                item["app"], item["proc"], item["instance"], item["volume"], item["mode"],
                " ".join(item["nodes"]), item["schedule"], item["schedule_pushed"],
                window["from"], window["to"], _get(item, "target_rpo", "hours"),
                _get(item, "achieved_rpo", "hours"), _get(item, "achieved_rpo", "from"),
                _get(item, "achieved_rpo", "to"), _get(item, "since_last_good", "hours"),
                _get(item, "last_good", "at"), _get(item, "last_good", "bytes"),
                _get(item, "due_runs", "due"), _get(item, "due_runs", "succeeded"),
                _get(item, "due_runs", "percent"), _get(item, "last_drill", "at"),
                _get(item, "last_drill", "outcome"), _get(item, "last_verified_drill", "at"),
                item["throughput_mib_s"], _get(item, "predicted_rto", "minutes"),
                sum(kinds.values()), " ".join(f"{k}:{n}" for k, n in sorted(kinds.items())),
                *(item["controls"][c]["status"] for c in CONTROLS), app["result"]]
            out.append([_cell(v) for v in values])
    return out


def to_csv(body: dict[str, Any]) -> str:
    """The report as CSV, its last line the sha256 of the bytes before it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows(body))
    text = buffer.getvalue()
    return f"{text}sha256,{sha256(text)}\n"


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#111}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .3em;break-after:avoid}
h3{font-size:1em;margin:.8em 0 .2em;break-after:avoid}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em;font-size:12px}
th,td{border:1px solid #bbb;padding:.2em .4em;text-align:left;vertical-align:top}
th{background:#eee}.pass{color:#064}.fail{color:#a00;font-weight:bold}.unknown{color:#850}
.meta{color:#444}code{font-size:11px;word-break:break-all}tr{break-inside:avoid}
@media print{body{margin:0}a{color:inherit;text-decoration:none}}
"""


def _status(control: dict[str, str]) -> str:
    return (f'<td class="{escape(control["status"])}" title="{escape(control["why"])}">'
            f'{escape(control["status"])}<br><small>{escape(control["why"])}</small></td>')


def _value(value: Any, unit: str = "") -> str:
    return "–" if value is None or value == "" else escape(f"{value}{unit}")


def to_html(answer: dict[str, Any], links: dict[str, str]) -> str:
    """The signed report (``{"sha256", "report"}``) as a printable page; ``links`` are the
    same report as JSON and CSV (and the next page, for a system report)."""
    body = answer["report"]
    window = body["window"]
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>Backup evidence · {escape(body['scope'])}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>Backup evidence: {escape(body['scope'])}</h1>",
             f"<p class=\"meta\">Window {escape(window['from'])} to {escape(window['to'])} "
             f"({window['days']} days, UTC). Sizes in bytes, throughput in MiB/s, RPO in hours, "
             f"RTO in minutes. sha256 of the report (JSON, sorted keys): "
             f"<code>{escape(answer['sha256'])}</code></p>",
             "<p class=\"meta\">" + " · ".join(f'<a href="{escape(url)}">{escape(name)}</a>'
                                              for name, url in links.items()) + "</p>"]
    for app in body["apps"]:
        targets = app["targets"]
        parts.append(f"<h2>{escape(app['app'])}: <span class=\"{escape(app['result'])}\">"
                     f"{escape(app['result'])}</span></h2>")
        parts.append("<p class=\"meta\">Targets: RPO "
                     + (f"{targets['rpo_hours']:g} h" if targets["rpo_hours"]
                        else "each schedule's own, plus the grace")
                     + f"; success share {targets['success_percent']:g}%; drilled within "
                     f"{targets['drill_days']:g} days; RTO {targets['rto_minutes']:g} min. "
                     + "; ".join(f"{escape(c)}: {v['pass']} pass, {v['fail']} fail, "
                                 f"{v['unknown']} unknown" for c, v in app["controls"].items())
                     + "</p>")
        parts.append("<table><thead><tr><th>proc / instance / volume</th><th>schedule</th>"
                     "<th>target RPO</th><th>achieved RPO</th><th>since last good</th>"
                     "<th>due runs ok</th><th>last drill</th><th>MiB/s</th><th>RTO</th>"
                     + "".join(f"<th>{escape(c)}</th>" for c in CONTROLS)
                     + "</tr></thead><tbody>")
        for item in app["items"]:
            due = item["due_runs"]
            drill = item["last_drill"]
            parts.append(
                f"<tr><td>{escape(item['proc'])} / {item['instance']} / {escape(item['volume'])}"
                f"<br><small>{escape(' '.join(item['nodes']))}</small></td>"
                f"<td><code>{escape(item['schedule'])}</code></td>"
                f"<td>{_value(_get(item, 'target_rpo', 'hours'), ' h')}</td>"
                f"<td>{_value(_get(item, 'achieved_rpo', 'hours'), ' h')}<br><small>"
                f"{escape(item['achieved_rpo']['from'])} → {escape(item['achieved_rpo']['to'])}"
                f"</small></td>"
                f"<td>{_value(_get(item, 'since_last_good', 'hours'), ' h')}</td>"
                f"<td>{_value(due.get('succeeded'))} / {_value(due.get('due'))}"
                f" ({_value(due.get('percent'), '%')})</td>"
                f"<td>{escape(drill['outcome'] + ' ' + drill['at']) if drill else '–'}</td>"
                f"<td>{_value(item['throughput_mib_s'])}</td>"
                f"<td>{_value(_get(item, 'predicted_rto', 'minutes'), ' min')}</td>"
                + "".join(_status(item["controls"][c]) for c in CONTROLS) + "</tr>")
        parts.append("</tbody></table>")
        exceptions = [(f"{i['proc']} / {i['instance']} / {i['volume']}", e)
                      for i in app["items"] for e in i["exceptions"]]
        exceptions += [("(app)", e) for e in app["exceptions"]]
        if exceptions:
            parts.append("<h3>Exceptions in the window</h3>")
            parts.append("<table><thead><tr><th>when</th><th>item</th><th>kind</th><th>what</th>"
                         "<th>by</th></tr></thead><tbody>")
            for where, e in sorted(exceptions, key=lambda x: (x[1]["at"], x[0], x[1]["kind"])):
                ref = e.get("rid") or e.get("operation") or e.get("job") or ""
                until = f" until {e['until']}" if e.get("until") else ""
                if e.get("count"):
                    until += f" (×{e['count']}, the last at {e['last']})"
                parts.append(f"<tr><td>{escape(e['at'])}</td><td>{escape(where)}</td>"
                             f"<td>{escape(e['kind'])}</td><td>{escape(e['detail'] + until)}"
                             f"<br><small>{escape(ref)}</small></td>"
                             f"<td>{escape(e.get('by', ''))}</td></tr>")
            parts.append("</tbody></table>")
            omitted = sum(i["exceptions_omitted"] for i in app["items"])
            if omitted:
                parts.append(f"<p class=\"meta\">{omitted} older exceptions not listed (counted "
                             "in the JSON's exception_counts).</p>")
        else:
            parts.append("<p>No exception in the window.</p>")
    if not body["apps"]:
        parts.append("<p>No app on this page.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
