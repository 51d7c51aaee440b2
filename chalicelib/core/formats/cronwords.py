"""A schedule in words, for people reading the status and the dashboard. Pure.

``"0 30 2 * * 1"`` reads "on Mon at 02:30 UTC", ``"0 */5 * * * *"`` reads "every 5 minutes". The
words come from the values the daemon's parser (:func:`chalicelib.core.cron.parse`) accepted, so they
say what the daemon will do, not what the spec looks like; an invalid spec reads as the reason.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from chalicelib.core import cron, spread

_DAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MAX_LISTED = 6  # longer lists of times are summarised


def describe(spec: str) -> str:
    """The schedule ``spec`` in words ("invalid: <why>" when the daemon would drop it, or when an
    ``H`` in it cannot be resolved). ``H`` is resolved per item (:mod:`chalicelib.core.spread`):
    the words of an item's schedule are those of the schedule pushed for it."""
    try:
        schedule = cron.parse(spread.check(spec))
    except cron.ScheduleError as e:
        return f"invalid: {e}"
    if spread.has_h(spec):
        return "H: a time chosen per item (each item's schedule as pushed says which)"
    if schedule.every is not None:
        return f"every {_duration(schedule.every)}, counted from when the daemon loaded the job"
    second, minute, hour, dom, month, dow = schedule.values
    days = _days(dom, dow, schedule.day_or) + _months(month)
    clock = _clock(second, minute, hour)
    zone = "UTC" if schedule.tz is UTC else str(schedule.tz)
    if clock.startswith("every") and not days:
        return clock if schedule.tz is UTC else f"{clock} ({zone})"
    return f"{days or 'every day'} {clock} {zone}".replace("  ", " ")


def _duration(delay: timedelta) -> str:
    seconds = int(delay.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts)


def _step(values: tuple[int, ...], lo: int, hi: int) -> int:
    """k when ``values`` is every k-th value from ``lo`` to ``hi`` (1: all of them), else 0."""
    if len(values) < 2 or values[0] != lo:
        return 1 if values == (lo,) and lo == hi else 0
    k = values[1] - values[0]
    return k if values == tuple(range(lo, hi + 1, k)) else 0


def _clock(second: tuple[int, ...], minute: tuple[int, ...], hour: tuple[int, ...]) -> str:
    sec = "" if second == (0,) else ":" + ",".join(f"{s:02d}" for s in second)
    minutes, hours = _step(minute, 0, 59), _step(hour, 0, 23)
    if hours == 1:
        if minutes == 1:
            seconds = _step(second, 0, 59)
            if seconds > 1:
                return f"every {seconds} seconds"
            return "every second" if seconds == 1 else "every minute" + (
                f" at second {sec[1:]}" if sec else "")
        if minutes > 1:
            return f"every {minutes} minutes" + (f" at second {sec[1:]}" if sec else "")
        return "every hour at " + ", ".join(f":{m:02d}{sec}" for m in minute)
    if minutes == 1:
        return "every minute of hours " + ", ".join(f"{h:02d}" for h in hour)
    if hours > 1 and len(minute) == 1:
        return f"every {hours} hours at :{minute[0]:02d}{sec} from 00:{minute[0]:02d}"
    times = [f"{h:02d}:{m:02d}{sec}" for h in hour for m in minute]
    if len(times) <= MAX_LISTED:
        return "at " + ", ".join(times)
    return (f"at minutes {', '.join(f':{m:02d}' for m in minute)} of hours "
            f"{', '.join(f'{h:02d}' for h in hour)}")


def _days(dom: tuple[int, ...], dow: tuple[int, ...], day_or: bool) -> str:
    every_dom, every_dow = len(dom) == 31, len(dow) == 7
    if day_or and (every_dom or every_dow):  # "1-31 ... MON": robfig ORs them, so every day
        return ""
    on_dom = f"on day {', '.join(map(str, dom))} of the month"
    on_dow = "on " + ", ".join(_DAY_NAMES[d] for d in dow)
    if every_dom and every_dow:
        return ""
    if every_dow:
        return on_dom
    if every_dom:
        return on_dow
    return f"{on_dom} or {on_dow}"  # robfig ORs the two when neither is a star


def _months(month: tuple[int, ...]) -> str:
    return "" if len(month) == 12 else " in " + ", ".join(_MONTH_NAMES[m - 1] for m in month)
