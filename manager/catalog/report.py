"""What a discovery scan changed, for the caller and the log."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DiscoveryReport:
    """What a scan changed. Keys are ``group`` or ``group/script.py``."""

    added: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when any row was added, reactivated, updated or deactivated."""
        return bool(self.added or self.reactivated or self.updated or self.deactivated)

    def summary(self) -> str:
        """One line for the log: counts of scripts and groups, then the invalid items and errors.

        Scripts and groups are counted apart: "6 scripts, 3 groups added", never "9 added".
        """
        parts = [
            f"{_counted(self.added)} added",
            f"{_counted(self.reactivated)} reactivated",
            f"{_counted(self.updated)} updated",
            f"{_counted(self.deactivated)} deactivated",
        ]
        if self.invalid:
            parts.append("invalid: " + ", ".join(sorted(self.invalid)))
        if self.errors:
            parts.append("errors: " + "; ".join(self.errors))
        return ", ".join(parts)

    def record(
        self,
        key: str,
        created: bool,
        was_active: bool,
        changed: bool,
        invalid_reason: str | None,
    ) -> None:
        """Note what a scan did to one row: added, else reactivated, else updated if changed."""
        if created:
            self.added.append(key)
        elif not was_active:
            self.reactivated.append(key)
        elif changed:
            self.updated.append(key)
        if invalid_reason:
            self.invalid[key] = invalid_reason


def _counted(keys: list[str]) -> str:
    """Count report keys (``group/script.py`` or ``group``) as "2 scripts, 1 group"; "0" if none."""
    scripts = sum("/" in key for key in keys)
    groups = len(keys) - scripts
    words = [f"{n} {noun}{'s' if n != 1 else ''}" for n, noun in ((scripts, "script"),
             (groups, "group")) if n]  # fmt: skip
    return ", ".join(words) or "0"
