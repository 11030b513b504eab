"""Writes dates.tsv and dates_valid.tsv: dates as people write them -> ISO 8601, the classic first
encoder-decoder exercise (input and output of different lengths, one right answer).

    python sample_data/make_dates.py

Made up here with the standard library only. Numeric dates are day first (3/4/98 is 3 April
1998); two-digit years are 1950-2049 (50-99 -> 19xx, 00-49 -> 20xx).
"""

import datetime
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def ordinal(n):
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def written(date, rng):
    """One of the ways a person writes `date`."""
    d, m, y = date.day, date.month, date.year
    month, mon, weekday = MONTHS[m - 1], MONTHS[m - 1][:3], DAYS[date.weekday()]
    yy = f"{y % 100:02d}"
    forms = [
        f"{weekday}, {d} {month} {y}", f"{d} {month} {y}", f"{month} {d}, {y}", f"{month.lower()} {ordinal(d)} {y}",
        f"{ordinal(d)} of {month}, {y}", f"{d:02d}/{m:02d}/{y}", f"{d}/{m}/{yy}", f"{y}.{m:02d}.{d:02d}",
        f"{mon} {d} {y}", f"{d} {mon.lower()} {yy}", f"{weekday.upper()} {d} {month.upper()} {y}",
        f"{d}-{mon}-{y}", f"{weekday[:3]} {mon} {d:02d} {y}", f"{d}.{m}.{y}",
    ]
    return rng.choice(forms)


def write(name, count, rng, seen):
    start, span = datetime.date(1950, 1, 1), (datetime.date(2049, 12, 31) - datetime.date(1950, 1, 1)).days
    rows = []
    while len(rows) < count:
        date = start + datetime.timedelta(days=rng.randrange(span + 1))
        text = written(date, rng)
        if text in seen:  # the held-out part shares no source line with the training part
            continue
        seen.add(text)
        rows.append(f"{text}\t{date.isoformat()}")
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    rng, seen = random.Random(11), set()
    write("dates.tsv", 10000, rng, seen)
    write("dates_valid.tsv", 1000, rng, seen)
