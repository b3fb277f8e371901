"""Personal tags on scripts, merged with the system tags of the script's metadata.

A user's tags for a script are one ``user_script_tags`` row (comma-separated, as in the seed).
Personal tags are cleaned before they are stored: trimmed, lower-cased, repeats dropped, and
checked against the installation's limits (``SM_MAX_TAGS_PER_SCRIPT``, ``SM_MAX_TAG_LENGTH``,
``SM_ALLOWED_TAG_CHARS``). System tags come from the script's header or metadata files and are
shown as they are written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from manager.extensions import DbSession
from manager.models import Script, UserScriptTag

# SM_ALLOWED_TAG_CHARS names a character class: letters and digits (any alphabet) plus these.
CHARSETS: dict[str, str] = {
    "alphanumeric": "",
    "alphanumeric_dash": "-",
    "alphanumeric_underscore": "_",
    "alphanumeric_underscore_dash": "_-",
    "alphanumeric_underscore_dash_dot": "_-.",
}
CHARSET_WORDS: dict[str, str] = {
    "alphanumeric": "letters and digits",
    "alphanumeric_dash": "letters, digits and dashes (-)",
    "alphanumeric_underscore": "letters, digits and underscores (_)",
    "alphanumeric_underscore_dash": "letters, digits, underscores (_) and dashes (-)",
    "alphanumeric_underscore_dash_dot": "letters, digits, underscores (_), dashes (-) and dots (.)",
}
DEFAULT_CHARSET = "alphanumeric_underscore_dash"
MAX_SEARCH_TAGS = 20
SOURCES = ("system", "user", "both")


class TagError(ValueError):
    """Tags that break a limit; the message says which tag and why, for the user."""


@dataclass(frozen=True)
class TagLimits:
    max_tags: int = 20
    max_length: int = 30
    charset: str = DEFAULT_CHARSET
    suggestions: bool = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TagLimits:
        charset = str(config.get("SM_ALLOWED_TAG_CHARS") or DEFAULT_CHARSET)
        return cls(
            max_tags=int(config.get("SM_MAX_TAGS_PER_SCRIPT", 20)),
            max_length=int(config.get("SM_MAX_TAG_LENGTH", 30)),
            charset=charset if charset in CHARSETS else DEFAULT_CHARSET,
            suggestions=bool(config.get("SM_ENABLE_TAG_SUGGESTIONS", True)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_tags": self.max_tags,
            "max_length": self.max_length,
            "allowed_chars": self.charset,
            "allowed_chars_text": CHARSET_WORDS[self.charset],
        }


def split_tags(raw: Any) -> list[str]:
    """A list of tags from a JSON list or a comma-separated text; TagError for anything else."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [part for part in raw.split(",")]
    if isinstance(raw, list):
        for item in raw:
            if not isinstance(item, str):
                raise TagError(f"Each tag must be text; {item!r} is not.")
        return list(raw)
    raise TagError("Send the tags as a list of text or as a comma-separated text.")


def clean_tag(tag: str, limits: TagLimits) -> str:
    """One tag trimmed and lower-cased; TagError naming the tag when it breaks a limit."""
    cleaned = tag.strip().lower()
    if len(cleaned) > limits.max_length:
        raise TagError(
            f"The tag '{cleaned[:40]}' is {len(cleaned)} characters long; "
            f"a tag may have at most {limits.max_length}."
        )
    extra = CHARSETS[limits.charset]
    bad = sorted({char for char in cleaned if not (char.isalnum() or char in extra)})
    if bad:
        shown = " ".join(repr(char) for char in bad)
        raise TagError(
            f"The tag '{cleaned}' contains {shown}: tags may hold only "
            f"{CHARSET_WORDS[limits.charset]}."
        )
    return cleaned


def clean_tags(raw: Any, limits: TagLimits) -> list[str]:
    """The cleaned, de-duplicated tags of ``raw`` (order kept); TagError on a broken limit."""
    tags: list[str] = []
    for item in split_tags(raw):
        tag = clean_tag(item, limits)
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > limits.max_tags:
        raise TagError(
            f"{len(tags)} tags given; a script may have at most {limits.max_tags} of your tags."
        )
    return tags


def parse_stored(text: str | None) -> list[str]:
    return [tag for tag in (text or "").split(",") if tag]


def system_tags(script: Script) -> list[str]:
    """The tags the script's metadata gives (header, script_metadata.json, developer edits)."""
    meta = script.metadata_json or {}
    tags = meta.get("tags")
    if isinstance(tags, list):
        return [str(tag) for tag in tags if str(tag).strip()]
    return [tag.strip() for tag in (script.tags or "").split(",") if tag.strip()]


def user_tags(db: DbSession, user_id: int, script_id: int) -> list[str]:
    row = db.execute(
        select(UserScriptTag).where(
            UserScriptTag.user_id == user_id, UserScriptTag.script_id == script_id
        )
    ).scalar()
    return parse_stored(row.tags) if row else []


def user_tags_by_script(db: DbSession, user_id: int) -> dict[int, list[str]]:
    rows = db.execute(select(UserScriptTag).where(UserScriptTag.user_id == user_id)).scalars()
    return {row.script_id: parse_stored(row.tags) for row in rows if row.tags}


def set_user_tags(
    db: DbSession, user_id: int, script_id: int, raw: Any, limits: TagLimits
) -> list[str]:
    """Replace the user's tags on a script (an empty list removes them); TagError on limits."""
    tags = clean_tags(raw, limits)
    row = db.execute(
        select(UserScriptTag).where(
            UserScriptTag.user_id == user_id, UserScriptTag.script_id == script_id
        )
    ).scalar()
    if not tags:
        if row is not None:
            db.delete(row)
        return []
    if row is None:
        row = UserScriptTag(user_id=user_id, script_id=script_id)
        db.add(row)
    row.tags = ",".join(tags)
    db.flush()
    return tags


def merged(system: Iterable[str], personal: Iterable[str]) -> list[dict[str, str]]:
    """System and personal tags in one list, each with its source (system, user or both).

    A personal tag equal to a system tag (ignoring case) is shown once, as ``both``.
    """
    result: list[dict[str, str]] = []
    index: dict[str, dict[str, str]] = {}
    for tag in system:
        key = tag.lower()
        if key not in index:
            index[key] = {"name": tag, "source": "system"}
            result.append(index[key])
    for tag in personal:
        entry = index.get(tag.lower())
        if entry is None:
            index[tag.lower()] = {"name": tag, "source": "user"}
            result.append(index[tag.lower()])
        elif entry["source"] == "system":
            entry["source"] = "both"
    return result


def tag_view(db: DbSession, user_id: int, script: Script) -> dict[str, Any]:
    personal = user_tags(db, user_id, script.id)
    system = system_tags(script)
    return {
        "script_id": script.id,
        "user_tags": personal,
        "system_tags": system,
        "tags": merged(system, personal),
    }


def all_user_tags(db: DbSession, user_id: int, prefix: str = "") -> list[dict[str, Any]]:
    """Every tag the user has used, with the number of scripts carrying it; most used first."""
    counts: Counter[str] = Counter()
    for tags in user_tags_by_script(db, user_id).values():
        counts.update(tags)
    wanted = prefix.strip().lower()
    return [
        {"tag": tag, "count": count}
        for tag, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if tag.startswith(wanted)
    ]


def parse_query(raw: str | None) -> list[str]:
    """Tags of a search (``?tags=a,b``): trimmed and lower-cased; TagError when none or too many."""
    tags = [tag.strip().lower() for tag in (raw or "").split(",") if tag.strip()]
    if not tags:
        raise TagError("Give at least one tag to search for, e.g. ?tags=daily,reports.")
    if len(tags) > MAX_SEARCH_TAGS:
        raise TagError(f"Search for at most {MAX_SEARCH_TAGS} tags at a time.")
    return list(dict.fromkeys(tags))


def matches(script_tags: Iterable[str], wanted: list[str], match_all: bool) -> bool:
    have = {tag.lower() for tag in script_tags}
    return all(t in have for t in wanted) if match_all else any(t in have for t in wanted)


def search(
    db: DbSession,
    user_id: int,
    scripts: Iterable[Script],
    wanted: list[str],
    *,
    match_all: bool,
    source: str = "all",
) -> list[tuple[Script, list[dict[str, str]]]]:
    """The scripts (of those given: the ones the user may see) carrying the wanted tags.

    ``match_all``: every wanted tag (AND), else any of them (OR). ``source``: ``user`` (only
    personal tags), ``system`` or ``all``.
    """
    personal = user_tags_by_script(db, user_id)
    found = []
    for script in scripts:
        mine = personal.get(script.id, [])
        system = system_tags(script)
        pool = mine if source == "user" else system if source == "system" else [*system, *mine]
        if matches(pool, wanted, match_all):
            found.append((script, merged(system, mine)))
    return found
