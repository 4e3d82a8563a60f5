"""Load a collaboration dataset directory and derive cut dates.

A dataset directory holds four gzipped CSV files with a header row:

    channels.csv.gz      channel_id, name, first_day
    activity.csv.gz      day, user_id, channel_id, commits, files
    interactions.csv.gz  day, user_id, other_user_id, kind, count
    hours.csv.gz         day, user_id, local_hour, commits

Only ids, days and counts are read (channel names are never used). Ids are kept
as strings; internally every user and channel gets a dense index assigned in
id order (numeric order when every id is an integer, else string order), so
"smallest id" tie-breaks in features.py are "smallest index" here.

Days are ISO dates (UTC) and are stored as proleptic ordinals
(``date.toordinal()``), so ``T - day`` is a number of days.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import os
from dataclasses import dataclass, field

import numpy as np

FILES = ("channels.csv.gz", "activity.csv.gz", "interactions.csv.gz", "hours.csv.gz")
LABEL_DAYS = 365


def day_of(iso: str) -> int:
    return dt.date.fromisoformat(iso).toordinal()


def iso_of(day: int) -> str:
    return dt.date.fromordinal(int(day)).isoformat()


def id_sort_key(ids):
    """Order ids numerically when all are integers, else as strings."""
    ids = list(ids)
    if all(_is_int(i) for i in ids):
        return sorted(ids, key=lambda s: (int(s), s))
    return sorted(ids)


def _is_int(s: str) -> bool:
    try:
        int(s)
        return True
    except ValueError:
        return False


@dataclass
class Dataset:
    name: str
    user_ids: list            # index -> id (str)
    channel_ids: list         # index -> id (str)
    # activity rows
    a_day: np.ndarray
    a_user: np.ndarray
    a_chan: np.ndarray
    a_commits: np.ndarray
    a_files: np.ndarray
    # interaction rows (directed as in the file; features treat them undirected)
    i_day: np.ndarray
    i_user: np.ndarray
    i_other: np.ndarray
    i_count: np.ndarray
    i_kind: list
    # hours rows
    h_day: np.ndarray
    h_user: np.ndarray
    h_hour: np.ndarray
    h_commits: np.ndarray
    # channels.csv first_day (ordinal, -1 when absent); informative only
    channel_first_day: np.ndarray
    user_index: dict = field(default_factory=dict)
    channel_index: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_channels(self) -> int:
        return len(self.channel_ids)

    def day_range(self) -> tuple[int, int]:
        days = [a for a in (self.a_day, self.i_day, self.h_day) if len(a)]
        lo = min(int(a.min()) for a in days)
        hi = max(int(a.max()) for a in days)
        return lo, hi


def _read(path: str) -> list[dict]:
    with gzip.open(path, "rt", newline="") as f:
        return list(csv.DictReader(f))


def load_rows(data_dir: str) -> dict[str, list[dict]]:
    missing = [f for f in FILES if not os.path.exists(os.path.join(data_dir, f))]
    if missing:
        raise FileNotFoundError(f"{data_dir}: missing {', '.join(missing)}")
    return {f.split(".")[0]: _read(os.path.join(data_dir, f)) for f in FILES}


def from_rows(name: str, rows: dict[str, list[dict]]) -> Dataset:
    """Build a Dataset from row dicts (as read from the CSVs; values may be str or int)."""
    ch_rows, act, inter, hours = rows["channels"], rows["activity"], rows["interactions"], rows["hours"]
    users = set()
    for r in act:
        users.add(str(r["user_id"]))
    for r in inter:
        users.add(str(r["user_id"]))
        users.add(str(r["other_user_id"]))
    for r in hours:
        users.add(str(r["user_id"]))
    chans = {str(r["channel_id"]) for r in ch_rows} | {str(r["channel_id"]) for r in act}
    user_ids = id_sort_key(users)
    channel_ids = id_sort_key(chans)
    ui = {u: i for i, u in enumerate(user_ids)}
    ci = {c: i for i, c in enumerate(channel_ids)}

    def arr(rs, key, conv, dtype):
        return np.array([conv(r[key]) for r in rs], dtype=dtype)

    def day(v):
        return day_of(str(v))

    first = np.full(len(channel_ids), -1, dtype=np.int64)
    for r in ch_rows:
        if r.get("first_day"):
            first[ci[str(r["channel_id"])]] = day(r["first_day"])

    return Dataset(
        name=name,
        user_ids=user_ids,
        channel_ids=channel_ids,
        a_day=arr(act, "day", day, np.int64),
        a_user=arr(act, "user_id", lambda v: ui[str(v)], np.int64),
        a_chan=arr(act, "channel_id", lambda v: ci[str(v)], np.int64),
        a_commits=arr(act, "commits", float, np.float64),
        a_files=arr(act, "files", float, np.float64),
        i_day=arr(inter, "day", day, np.int64),
        i_user=arr(inter, "user_id", lambda v: ui[str(v)], np.int64),
        i_other=arr(inter, "other_user_id", lambda v: ui[str(v)], np.int64),
        i_count=arr(inter, "count", float, np.float64),
        i_kind=[str(r["kind"]) for r in inter],
        h_day=arr(hours, "day", day, np.int64),
        h_user=arr(hours, "user_id", lambda v: ui[str(v)], np.int64),
        h_hour=arr(hours, "local_hour", int, np.int64),
        h_commits=arr(hours, "commits", float, np.float64),
        channel_first_day=first,
        user_index=ui,
        channel_index=ci,
    )


def load_dataset(data_dir: str) -> Dataset:
    name = os.path.basename(os.path.normpath(data_dir))
    return from_rows(name, load_rows(data_dir))


def default_cuts(ds: Dataset, n: int = 3, spacing: int = 365) -> list[int]:
    """The last ``n`` cuts, ``spacing`` days apart, that leave LABEL_DAYS of labels.

    The latest cut is ``max_day + 1 - LABEL_DAYS``: its label window
    [T, T + 365) ends exactly after the last day in the data. Earlier cuts step
    back ``spacing`` days. Returned oldest first.
    """
    _, hi = ds.day_range()
    last = hi + 1 - LABEL_DAYS
    return sorted(last - k * spacing for k in range(n))


def parse_cuts(text: str) -> list[int]:
    return sorted(day_of(s.strip()) for s in text.split(",") if s.strip())
