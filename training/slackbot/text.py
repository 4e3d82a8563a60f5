"""The Slack bot classifier's tokenization: the one definition the Worker mirrors.

src/slackbot/tokenize.ts implements the same rule and the manifest names it
(`tokenizer`); the parity fixture (models/slackbot/parity.json) checks both
sides on the same texts, tokenization included:

* ASCII letters lowered (A-Z -> a-z); nothing else is changed;
* tokens are the maximal runs of [a-z0-9];
* tokens shorter than 2 characters are dropped.
"""

from __future__ import annotations

import re

TOKENIZER = {"lowercase": "ascii", "pattern": "[a-z0-9]+", "min_length": 2}

_TOKEN = re.compile(r"[a-z0-9]+")
_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def tokenize(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.translate(_UPPER)) if len(t) >= TOKENIZER["min_length"]]
