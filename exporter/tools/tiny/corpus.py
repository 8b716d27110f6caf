"""The training text: the King James Bible, read from Debian's public-domain `bible-kjv` package.

The package ships the text compressed in its own format, so we let its `bible` program
print every verse ("Ge1:1 In the beginning ...", one verse a line) and regroup the verses
into chapters. A chapter is one document: training windows and the held-out split never
cut a verse in two, and held-out chapters share no text with training chapters.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

PACKAGE = "bible-kjv"  # the `bible` program; depends on bible-kjv-text, which holds the text
TEXT_PACKAGE = "bible-kjv-text"
LICENCE = (
    "King James Version (1611): public domain (copyright expired, per the package's "
    "/usr/share/doc/bible-kjv-text/copyright); the Debian packaging and `bible` program are GPL-2+"
)
WHOLE_BIBLE = "Gen1:1-Rev22:21"
HELDOUT_EVERY = 50  # every 50th chapter (2%) is held out for perplexity

VERSE_LINE = re.compile(r"^(?P<book>\d?[A-Za-z]+)(?P<chapter>\d+):(?P<verse>\d+) (?P<text>.+)$")


@dataclass(frozen=True)
class Chapter:
    book: str  # the `bible` program's abbreviation: Ge, Exo, ... Rev
    number: int
    verses: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.verses)


def bible_program() -> str:
    path = shutil.which("bible")
    if path is None:
        raise RuntimeError(
            f"the `bible` program is missing: install the corpus with `sudo apt-get install {PACKAGE}` "
            "(or run `make tiny-model`, which does)"
        )
    return path


def package_version(package: str) -> str:
    """The installed Debian version of `package`, for the model card."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def clean_verse(text: str) -> str:
    # The source text sometimes puts two spaces after a full stop; one is enough.
    return re.sub(r"\s+", " ", text).strip()


def parse_verses(dump: str) -> list[Chapter]:
    """Group `bible -f` output lines into chapters, in canonical order."""
    chapters: list[Chapter] = []
    current_key, current_verses = None, []
    for line_number, line in enumerate(dump.splitlines(), start=1):
        if not line.strip():
            continue
        match = VERSE_LINE.match(line)
        if match is None:
            raise ValueError(f"`bible` output line {line_number} is not 'BookC:V text': {line[:80]!r}")
        key = (match["book"], int(match["chapter"]))
        if key != current_key:
            if current_verses:
                chapters.append(Chapter(current_key[0], current_key[1], tuple(current_verses)))
            current_key, current_verses = key, []
        current_verses.append(clean_verse(match["text"]))
    if current_verses:
        chapters.append(Chapter(current_key[0], current_key[1], tuple(current_verses)))
    return chapters


def read_chapters() -> list[Chapter]:
    """All 1,189 chapters of the King James Bible, from the installed package."""
    dump = subprocess.run(
        [bible_program(), "-f", WHOLE_BIBLE], capture_output=True, text=True, check=True
    ).stdout
    chapters = parse_verses(dump)
    if len(chapters) != 1189:
        raise RuntimeError(f"expected 1189 chapters from `bible`, got {len(chapters)}; is {TEXT_PACKAGE} intact?")
    return chapters


def split_chapters(chapters: list[Chapter], every: int = HELDOUT_EVERY) -> tuple[list[Chapter], list[Chapter]]:
    """(train, held-out): every `every`-th chapter is held out, a deterministic slice spread over all books."""
    train = [c for i, c in enumerate(chapters) if i % every != every - 1]
    heldout = [c for i, c in enumerate(chapters) if i % every == every - 1]
    return train, heldout
