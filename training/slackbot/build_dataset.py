"""Build datasets/debian-packages/descriptions.csv from `apt-cache dumpavail`.

The Slack bot's default classifier learns "which team knows about this" from
a real labelled corpus of short technical texts that no one here wrote: the
one-line descriptions of Debian packages, labelled by the package's archive
section, with sections grouped into twelve teams (TEAMS below).

    apt-cache dumpavail > /tmp/dumpavail.txt
    /usr/bin/python3 training/slackbot/build_dataset.py --dumpavail /tmp/dumpavail.txt \
        --out datasets/debian-packages/descriptions.csv

Deterministic for a given dumpavail: packages are deduplicated by their
description, ordered by SHA-1 of the package name, the first PER_TEAM of each
team kept; the held-out split is SHA-1(package) mod 5 == 0 (about 20%).
Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys

PER_TEAM = 400

# Team -> Debian sections (the component prefix, e.g. "contrib/", is dropped).
TEAMS: dict[str, list[str]] = {
    "python": ["python"],
    "javascript": ["javascript"],
    "web": ["web", "httpd", "php"],
    "database": ["database"],
    "networking": ["net", "mail", "comm", "news"],
    "graphics": ["graphics", "video"],
    "sound": ["sound"],
    "science": ["science", "math", "gnu-r"],
    "infrastructure": ["admin", "kernel", "shells"],
    "games": ["games"],
    "docs": ["doc", "tex"],
    "devtools": ["devel", "vcs", "debug"],
}

SECTION_TEAM = {s: team for team, sections in TEAMS.items() for s in sections}


def stanzas(lines):
    fields: dict[str, str] = {}
    for raw in lines:
        line = raw.rstrip("\n")
        if not line:
            if fields:
                yield fields
            fields = {}
            continue
        if line[0] in " \t":
            continue  # a continuation line: the long description is not used
        key, _, value = line.partition(":")
        if key not in fields:
            fields[key] = value.strip()
    if fields:
        yield fields


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def build(lines) -> list[dict]:
    seen_packages: set[str] = set()
    seen_texts: set[str] = set()
    by_team: dict[str, list[dict]] = {t: [] for t in TEAMS}
    candidates = []
    for f in stanzas(lines):
        package, section, text = f.get("Package"), f.get("Section"), f.get("Description")
        if not package or not section or not text or package in seen_packages:
            continue
        seen_packages.add(package)
        team = SECTION_TEAM.get(section.split("/")[-1])
        if team is None:
            continue
        candidates.append((sha1(package), package, section.split("/")[-1], team, " ".join(text.split())))
    candidates.sort()
    for digest, package, section, team, text in candidates:
        key = text.lower()
        if key in seen_texts or len(by_team[team]) >= PER_TEAM:
            continue
        seen_texts.add(key)
        split = "test" if int(digest[:8], 16) % 5 == 0 else "train"
        by_team[team].append({"package": package, "section": section, "team": team, "split": split, "text": text})
    rows = [r for team in TEAMS for r in by_team[team]]
    rows.sort(key=lambda r: r["package"])
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dumpavail", required=True, help="output of `apt-cache dumpavail`")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    with open(args.dumpavail, encoding="utf-8", errors="replace") as fh:
        rows = build(fh)
    with open(args.out, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["package", "section", "team", "split", "text"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    counts = {t: sum(1 for r in rows if r["team"] == t) for t in TEAMS}
    print(f"{len(rows)} rows; per team {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
