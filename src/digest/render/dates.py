"""Dates as the emails and pages print them, in English whatever the machine's locale."""

from __future__ import annotations

from datetime import date

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def date_label(day: date) -> str:
    """The long form, e.g. "Wednesday, 25 November 2026"."""
    return f"{DAYS[day.weekday()]}, {day.day} {MONTHS[day.month - 1]} {day.year}"


def day_label(day: date) -> str:
    """The short form, e.g. "3 March 2026"."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"
