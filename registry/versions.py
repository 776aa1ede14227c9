"""Version constraints: which published versions of a plugin a ruvector.toml entry accepts.

Versions are semver x.y.z[-pre] without build metadata, ordered by
`reconciler.manifest.semver_key`. A constraint is one or more parts joined by
commas, all of which must hold:

    1.2.3  =1.2.3      exactly that version
    ^1.2.3             compatible updates (cargo/npm): the first non-zero
                       component is fixed, so ^1.2.3 is >=1.2.3, <2.0.0,
                       ^0.2.3 is >=0.2.3, <0.3.0 and ^0.0.3 is >=0.0.3, <0.0.4;
                       ^1.2 and ^1 fix what they name (^0.0 is <0.1.0)
    ~1.2.3             patch updates: >=1.2.3, <1.3.0; ~1.2 is ~1.2.0, ~1 is <2.0.0
    >=1.0  >1.0  <2  <=1.4.2
                       comparisons; missing components are zeros (>1.0 is >1.0.0)
    *                  any version

Pre-releases follow npm's rule: 1.3.0-beta.1 is allowed only when a part of
the constraint names a pre-release of 1.3.0 itself, even if it is in range.
Someone who asked for ^1.2.0 opted into releases, not into testing 1.3.0's
betas; someone who wrote >=1.3.0-beta.1 did opt in, for 1.3.0 only.

Everything here is pure: parse errors are ValueError with the text in the
message, for the caller to wrap in a ConfigError that says where it was.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from reconciler.manifest import semver_key

# The shape of semver_key's result; mypy checks the two stay in step.
VersionKey = tuple[int, int, int, bool, tuple[tuple[int, int, str], ...]]

_FORMS = (
    "the accepted forms are 1.2.3, =1.2.3, ^1.2.3, ~1.2.3, >=1.2, >1.2, <2.0.0, <=1.4.2, "
    "several joined by commas (>=1.2, <2), and *"
)

# [0-9], not \d: \d also matches other scripts' digits, which int() accepts.
_NUMBER = "(?:0|[1-9][0-9]*)"
# x, x.y or x.y.z with no pre-release: the forms where zeros may be implied.
_NUMBERS = re.compile(rf"{_NUMBER}(?:\.{_NUMBER}){{0,2}}")


class Op(enum.Enum):
    """How a comparator relates a version to its bound."""

    EQ = "="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="


# The outcomes of comparing a version with a bound (-1, 0, 1) that each op accepts.
_ACCEPTS: dict[Op, frozenset[int]] = {
    Op.EQ: frozenset({0}),
    Op.GT: frozenset({1}),
    Op.GE: frozenset({0, 1}),
    Op.LT: frozenset({-1}),
    Op.LE: frozenset({-1, 0}),
}

# Longest first, so that ">=1.0" is not read as ">" followed by "=1.0".
_PREFIXES = ("^", "~", ">=", "<=", ">", "<", "=")

# One comparator as written: an optional operator, spaces, then a version.
_COMPARATOR = re.compile(r"(?:\^|~|>=|<=|>|<|=)?\s*[^\s^~<>=]+")

# Words people write for "the newest version", which `*` already means.
_NEWEST_WORDS = frozenset({"latest", "newest", "any"})


@dataclass(frozen=True)
class Comparator:
    """One bound a version must meet: `op` applied to a full x.y.z[-pre] `version`."""

    op: Op
    version: str

    def admits(self, key: VersionKey) -> bool:
        """Whether the version with semver key `key` meets this bound."""
        bound = semver_key(self.version)
        return ((key > bound) - (key < bound)) in _ACCEPTS[self.op]

    def __str__(self) -> str:
        return f"{self.op.value}{self.version}"


@dataclass(frozen=True)
class Constraint:
    """A parsed version constraint; build one with `Constraint.parse`.

    `text` is the normalised spelling (what str() gives); `comparators` are
    the bounds it stands for, all of which must hold (none for `*`).
    """

    text: str
    comparators: tuple[Comparator, ...] = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse `text` in one of the forms in the module docstring.

        Raises ValueError naming `text` and the accepted forms.
        """
        try:
            if not text.strip():
                raise ValueError("it is empty")
            parts = [_parse_part(part.strip()) for part in text.split(",")]
        except ValueError as exc:
            raise ValueError(f"'{text}' is not a version constraint: {exc}; {_FORMS}") from exc
        return cls(
            text=", ".join(spelling for spelling, _ in parts),
            comparators=tuple(c for _, bounds in parts for c in bounds),
        )

    @property
    def exact(self) -> str | None:
        """The one version this constraint pins, or None if it allows a range."""
        if len(self.comparators) == 1 and self.comparators[0].op is Op.EQ:
            return self.comparators[0].version
        return None

    def allows(self, version: str) -> bool:
        """Whether `version` satisfies every part, under the pre-release rule.

        Raises ValueError if `version` is not x.y.z[-pre].
        """
        key = semver_key(version)
        if not all(c.admits(key) for c in self.comparators):
            return False
        core, dash, _ = version.partition("-")
        return not dash or core in self._prerelease_cores()

    def _prerelease_cores(self) -> set[str]:
        """The x.y.z of every pre-release the constraint names: those opted into."""
        return {c.version.partition("-")[0] for c in self.comparators if "-" in c.version}

    def __str__(self) -> str:
        return self.text


def best(
    constraint: Constraint,
    versions: Iterable[str],
    *,
    floor: str | None = None,
    skip: Collection[str] = (),
) -> str | None:
    """The highest of `versions` that `constraint` allows, or None.

    `floor` is a high-water mark (say, the version installed now): versions
    below it are ignored so that an update never silently downgrades, except
    for an exact constraint, which names the version the user wants. Versions
    in `skip` (say, ones that failed to install) are never chosen.

    Raises ValueError naming any of `versions`, or `floor`, that is not
    x.y.z[-pre].
    """
    # Key every version first, so a malformed one is reported even when it
    # would have been filtered out.
    keyed = [(semver_key(v), v) for v in versions]
    lowest = None if floor is None else semver_key(floor)
    if constraint.exact is not None:
        lowest = None  # an exact pin may go down: it names the version wanted
    candidates = [
        (key, v)
        for key, v in keyed
        if v not in skip and (lowest is None or key >= lowest) and constraint.allows(v)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda kv: kv[0])[1]


def _parse_part(part: str) -> tuple[str, tuple[Comparator, ...]]:
    """One comma-separated part: its normalised spelling and the bounds it means."""
    if not part:
        raise ValueError("a part between commas is empty")
    if part == "*":
        return "*", ()
    if part.casefold() in _NEWEST_WORDS:
        # Said after "'latest' is not a version constraint": the fix is what matters.
        raise ValueError("write * for any version (the newest one is chosen)")
    _refuse_unjoined(part)
    prefix = next((p for p in _PREFIXES if part.startswith(p)), "")
    written = part[len(prefix) :].strip()
    numbers, pre = _split_version(written)
    if prefix == "^":
        return f"^{written}", _range(numbers, pre, _caret_fixed(numbers))
    if prefix == "~":
        # ~x.y and ~x.y.z let the patch move; ~x lets the minor move.
        return f"~{written}", _range(numbers, pre, 1 if len(numbers) > 1 else 0)
    if prefix in ("", "="):
        if len(numbers) < 3:
            # Cargo reads a bare 1.2 as ^1.2 and npm as 1.2.x: too ambiguous to guess.
            raise ValueError(f"the exact version '{written}' needs all of x.y.z (or write ^ or ~)")
        return written, (Comparator(Op.EQ, written),)
    padded = _pad(numbers, pre)
    op = Op(prefix)
    return f"{op.value}{padded}", (Comparator(op, padded),)


def _refuse_unjoined(part: str) -> None:
    """Refuse comparators separated by spaces (">=1.0 <2.0"): npm's syntax, not ours.

    Raises ValueError spelling the part joined with commas, as it is meant.
    """
    pieces = _COMPARATOR.findall(part)
    if len(pieces) > 1 and any(p.startswith(_PREFIXES) for p in pieces[1:]):
        joined = ", ".join("".join(p.split()) for p in pieces)
        raise ValueError(f"join the parts with a comma: '{joined}'")


def _split_version(written: str) -> tuple[tuple[int, ...], str]:
    """The 1-3 numbers and the pre-release ("" if none) of a version in a part.

    Raises ValueError naming `written`.
    """
    core, dash, pre = written.partition("-")
    if dash:
        # A pre-release belongs to one exact x.y.z; semver_key checks all of it.
        semver_key(written)
    elif "+" in core:
        raise ValueError(f"'{written}' has build metadata (+...), which versions may not carry")
    elif not _NUMBERS.fullmatch(core):
        raise ValueError(f"'{written}' is not a version x.y.z[-pre] (or x.y or x after ^ ~ < >)")
    return tuple(int(n) for n in core.split(".")), pre


def _caret_fixed(numbers: tuple[int, ...]) -> int:
    """Which component a caret fixes: the first non-zero one it names, else its last."""
    return next((i for i, n in enumerate(numbers) if n != 0), len(numbers) - 1)


def _range(numbers: tuple[int, ...], pre: str, fixed: int) -> tuple[Comparator, ...]:
    """>= the version written, < the next value of component `fixed`."""
    upper = [*numbers[:fixed], numbers[fixed] + 1]
    return (
        Comparator(Op.GE, _pad(numbers, pre)),
        Comparator(Op.LT, _pad(tuple(upper), "")),
    )


def _pad(numbers: tuple[int, ...], pre: str) -> str:
    """x.y.z[-pre] from 1-3 numbers, the missing ones zero."""
    core = ".".join(str(n) for n in (*numbers, 0, 0)[:3])
    return f"{core}-{pre}" if pre else core
