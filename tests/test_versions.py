"""registry.versions: constraint forms, their boundaries, the pre-release rule and best()."""

from __future__ import annotations

import dataclasses
import re

import pytest

from registry.versions import Constraint, best

# text, str() of the parsed constraint, the bounds it stands for, .exact
PARSED = [
    ("1.2.3", "1.2.3", ["=1.2.3"], "1.2.3"),
    ("=1.2.3", "1.2.3", ["=1.2.3"], "1.2.3"),
    (" = 1.2.3 ", "1.2.3", ["=1.2.3"], "1.2.3"),
    ("1.2.3-rc.1", "1.2.3-rc.1", ["=1.2.3-rc.1"], "1.2.3-rc.1"),
    ("^1.2.3", "^1.2.3", [">=1.2.3", "<2.0.0"], None),
    ("^0.2.3", "^0.2.3", [">=0.2.3", "<0.3.0"], None),
    ("^0.0.3", "^0.0.3", [">=0.0.3", "<0.0.4"], None),
    ("^0.0.0", "^0.0.0", [">=0.0.0", "<0.0.1"], None),
    ("^1.2", "^1.2", [">=1.2.0", "<2.0.0"], None),
    ("^0.2", "^0.2", [">=0.2.0", "<0.3.0"], None),
    ("^0.0", "^0.0", [">=0.0.0", "<0.1.0"], None),
    ("^1", "^1", [">=1.0.0", "<2.0.0"], None),
    ("^0", "^0", [">=0.0.0", "<1.0.0"], None),
    ("^1.2.3-beta.1", "^1.2.3-beta.1", [">=1.2.3-beta.1", "<2.0.0"], None),
    ("~1.2.3", "~1.2.3", [">=1.2.3", "<1.3.0"], None),
    ("~1.2", "~1.2", [">=1.2.0", "<1.3.0"], None),
    ("~1", "~1", [">=1.0.0", "<2.0.0"], None),
    ("~0.0.3", "~0.0.3", [">=0.0.3", "<0.1.0"], None),
    ("~1.2.3-rc.1", "~1.2.3-rc.1", [">=1.2.3-rc.1", "<1.3.0"], None),
    (">=1.0.0", ">=1.0.0", [">=1.0.0"], None),
    (">1.0", ">1.0.0", [">1.0.0"], None),
    ("<2", "<2.0.0", ["<2.0.0"], None),
    ("<=1.4.2", "<=1.4.2", ["<=1.4.2"], None),
    (">= 1.2", ">=1.2.0", [">=1.2.0"], None),
    (">=1.2, <2.0", ">=1.2.0, <2.0.0", [">=1.2.0", "<2.0.0"], None),
    ("  >=1.2 ,<2.0  ", ">=1.2.0, <2.0.0", [">=1.2.0", "<2.0.0"], None),
    ("^1.2, <1.5", "^1.2, <1.5.0", [">=1.2.0", "<2.0.0", "<1.5.0"], None),
    (">=1.2.3, <=1.2.3", ">=1.2.3, <=1.2.3", [">=1.2.3", "<=1.2.3"], None),
    ("*", "*", [], None),
    (" * ", "*", [], None),
]


@pytest.mark.parametrize(("text", "normal", "bounds", "exact"), PARSED)
def test_parse(text: str, normal: str, bounds: list[str], exact: str | None) -> None:
    constraint = Constraint.parse(text)
    assert str(constraint) == normal
    assert [str(c) for c in constraint.comparators] == bounds
    assert constraint.exact == exact


@pytest.mark.parametrize("text", [row[0] for row in PARSED])
def test_normal_text_parses_to_an_equal_constraint(text: str) -> None:
    constraint = Constraint.parse(text)
    again = Constraint.parse(str(constraint))
    assert again == constraint
    assert hash(again) == hash(constraint)


def test_constraints_are_frozen_values() -> None:
    assert len({Constraint.parse("=1.2.3"), Constraint.parse(" 1.2.3"), Constraint.parse("*")}) == 2
    assert Constraint.parse(">=1.2,<2") == Constraint.parse(">=1.2.0, <2.0.0")
    assert Constraint.parse("^1.2") != Constraint.parse("~1.2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        Constraint.parse("*").text = "1.0.0"  # type: ignore[misc]


# constraint, version, allowed
ALLOWS = [
    # exact
    ("1.2.3", "1.2.3", True),
    ("1.2.3", "1.2.4", False),
    ("1.2.3", "1.2.2", False),
    ("1.2.3", "1.2.3-beta", False),
    ("=1.2.3", "1.2.3", True),
    # caret: the first non-zero component is fixed
    ("^1.2.3", "1.2.3", True),
    ("^1.2.3", "1.2.2", False),
    ("^1.2.3", "1.99.99", True),
    ("^1.2.3", "2.0.0", False),
    ("^0.2.3", "0.2.3", True),
    ("^0.2.3", "0.2.99", True),
    ("^0.2.3", "0.3.0", False),
    ("^0.2.3", "0.2.2", False),
    ("^0.0.3", "0.0.3", True),
    ("^0.0.3", "0.0.4", False),
    ("^1.2", "1.2.0", True),
    ("^1.2", "1.1.99", False),
    ("^1.2", "2.0.0", False),
    ("^1", "1.0.0", True),
    ("^1", "0.99.99", False),
    ("^1", "1.99.0", True),
    ("^1", "2.0.0", False),
    ("^0", "0.99.0", True),
    ("^0", "1.0.0", False),
    ("^0.0", "0.0.99", True),
    ("^0.0", "0.1.0", False),
    # tilde: the minor is fixed when given
    ("~1.2.3", "1.2.3", True),
    ("~1.2.3", "1.2.99", True),
    ("~1.2.3", "1.3.0", False),
    ("~1.2.3", "1.2.2", False),
    ("~1.2", "1.2.0", True),
    ("~1.2", "1.3.0", False),
    ("~1", "0.99.0", False),
    ("~1", "1.99.0", True),
    ("~1", "2.0.0", False),
    # comparisons, padded with zeros
    (">=1.0.0", "1.0.0", True),
    (">=1.0.0", "0.99.99", False),
    (">=1.0.0", "99.0.0", True),
    (">1.0", "1.0.0", False),
    (">1.0", "1.0.1", True),
    ("<2.0.0", "1.99.99", True),
    ("<2.0.0", "2.0.0", False),
    ("<2.0.0", "0.0.0", True),
    ("<=1.4.2", "1.4.2", True),
    ("<=1.4.2", "1.4.3", False),
    (">=1.2, <2.0", "1.2.0", True),
    (">=1.2, <2.0", "1.1.99", False),
    (">=1.2, <2.0", "2.0.0", False),
    ("^1.2, <1.5", "1.4.99", True),
    ("^1.2, <1.5", "1.5.0", False),
    # any
    ("*", "0.0.0", True),
    ("*", "99.1.2", True),
    # numbers compare as numbers, not text
    ("^1.2", "1.10.0", True),
    ("<1.9", "1.10.0", False),
]

# A pre-release is allowed only if the constraint names a pre-release of the same x.y.z.
PRERELEASES = [
    ("*", "1.0.0-rc.1", False),
    ("^1.2.0", "1.3.0-beta.1", False),
    ("^1.2.3", "2.0.0-alpha", False),
    (">=1.0.0", "1.2.0-rc.1", False),
    ("<2.0.0", "1.5.0-rc.1", False),
    ("1.3.0-beta.1", "1.3.0-beta.1", True),
    ("=1.3.0-beta.1", "1.3.0-beta.2", False),
    ("1.3.0-beta.1", "1.3.0", False),
    (">=1.3.0-beta.1", "1.3.0-beta.1", True),
    (">=1.3.0-beta.1", "1.3.0-beta.2", True),
    (">=1.3.0-beta.1", "1.3.0-alpha", False),  # same x.y.z, but below the bound
    (">=1.3.0-beta.1", "1.3.0", True),
    (">=1.3.0-beta.1", "1.4.0-beta.1", False),  # in range, but 1.4.0 was not opted into
    (">=1.3.0-beta.1", "1.4.0", True),
    ("^1.3.0-beta.1", "1.3.0-rc.1", True),
    ("^1.3.0-beta.1", "1.3.1-beta", False),
    ("^1.3.0-beta.1", "1.5.0", True),
    ("^1.3.0-beta.1", "2.0.0-beta", False),
    ("~1.2.3-rc.1", "1.2.3-rc.2", True),
    ("~1.2.3-rc.1", "1.2.4", True),
    ("<2.0.0-beta", "2.0.0-alpha", True),
    ("<2.0.0-beta", "2.0.0-beta", False),
    ("<2.0.0-beta", "1.9.0-rc", False),
    (">=1.0.0, <1.3.0-rc.1", "1.3.0-beta", True),
    (">=1.0.0, <1.3.0-rc.1", "1.2.0-beta", False),
    # semver precedence inside the pre-release
    (">=1.0.0-alpha.2", "1.0.0-alpha.10", True),  # numeric identifiers as numbers
    (">=1.0.0-alpha.2", "1.0.0-alpha.beta", True),  # alphanumeric above numeric
    (">1.0.0-alpha", "1.0.0-alpha.1", True),  # a longer list sorts higher
    (">1.0.0-alpha.1", "1.0.0-alpha", False),
]


@pytest.mark.parametrize(("text", "version", "allowed"), ALLOWS + PRERELEASES)
def test_allows(text: str, version: str, allowed: bool) -> None:
    assert Constraint.parse(text).allows(version) is allowed


@pytest.mark.parametrize("version", ["", "1.2", "v1.2.3", "1.2.3+build.5", "1.2.3-", "01.2.3"])
def test_allows_rejects_what_is_not_a_version(version: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"'{version}' is not a version")):
        Constraint.parse("*").allows(version)


# text, what the message says about it (besides naming it and the forms)
BAD = [
    ("", "it is empty"),
    ("   ", "it is empty"),
    (",", "a part between commas is empty"),
    (">=1.2,", "a part between commas is empty"),
    (">=1.2,,<2", "a part between commas is empty"),
    ("1.2", "the exact version '1.2' needs all of x.y.z"),
    ("=1.2", "the exact version '1.2' needs all of x.y.z"),
    ("1", "the exact version '1' needs all of x.y.z"),
    ("^", "'' is not a version"),
    (">=", "'' is not a version"),
    ("v1.2.3", "'v1.2.3' is not a version"),
    ("latest", "'latest' is not a version constraint: write * for any version"),
    ("Latest", "write * for any version"),
    ("1.2.3+build", "'1.2.3+build' has build metadata"),
    (">=1.2.3+build", "'1.2.3+build' has build metadata"),
    ("1.2.3-rc.1+build", "'1.2.3-rc.1+build' is not a version"),
    ("^1.2-beta", "'1.2-beta' is not a version"),
    (">1-rc", "'1-rc' is not a version"),
    ("1.2.3-", "'1.2.3-' is not a version"),
    ("01.2.3", "'01.2.3' is not a version"),
    ("^1.02", "'1.02' is not a version"),
    ("1.2.3.4", "'1.2.3.4' is not a version"),
    ("^1.x", "'1.x' is not a version"),
    ("1.*", "'1.*' is not a version"),
    ("==1.2.3", "'=1.2.3' is not a version"),
    ("=>1.0", "'>1.0' is not a version"),
    ("!=1.0.0", "'!=1.0.0' is not a version"),
    # Parts are joined by commas, not spaces (npm's way): the message spells it.
    (">=1.2 <2", "join the parts with a comma: '>=1.2, <2'"),
    (">=1.0 <2.0", "join the parts with a comma: '>=1.0, <2.0'"),
    (">= 1.0 < 2.0", "join the parts with a comma: '>=1.0, <2.0'"),
    ("^1.2 <1.5, >1.0", "join the parts with a comma: '^1.2, <1.5'"),
    ("1.0 2.0", "'1.0 2.0' is not a version"),  # no operator: nothing to join
    ("1.2.3 - 1.4.0", "'1.2.3 - 1.4.0' is not a version"),  # npm hyphen ranges are not a form
    ("\u0663.2.1", "'\u0663.2.1' is not a version"),  # ARABIC-INDIC DIGIT THREE
]


@pytest.mark.parametrize(("text", "detail"), BAD)
def test_parse_errors_name_the_text_and_the_forms(text: str, detail: str) -> None:
    with pytest.raises(ValueError) as caught:
        Constraint.parse(text)
    message = str(caught.value)
    assert message.startswith(f"'{text}' is not a version constraint: ")
    assert detail in message
    assert "the accepted forms are 1.2.3, =1.2.3, ^1.2.3, ~1.2.3, >=1.2" in message


RELEASES = ["1.0.0", "1.1.0", "1.2.0", "1.10.0", "2.0.0", "0.9.0"]

# constraint, versions, floor, skip, expected
BEST = [
    ("^1.0", RELEASES, None, (), "1.10.0"),
    ("~1.1", RELEASES, None, (), "1.1.0"),
    ("*", RELEASES, None, (), "2.0.0"),
    ("^3", RELEASES, None, (), None),
    ("*", [], None, (), None),
    ("^1.0", ["1.1.0", "1.1.0", "1.0.0"], None, (), "1.1.0"),
    # pre-releases only when opted into; a release beats its own pre-releases
    ("^1.2", ["1.2.0", "1.3.0-beta.1"], None, (), "1.2.0"),
    (">=1.3.0-beta.1", ["1.2.0", "1.3.0-beta.1", "1.3.0-beta.2"], None, (), "1.3.0-beta.2"),
    (">=1.3.0-beta.1", ["1.3.0-beta.2", "1.3.0"], None, (), "1.3.0"),
    # floor: nothing below the high-water mark, which itself may be chosen
    ("^1.0", RELEASES, "1.2.0", (), "1.10.0"),
    ("~1.1", RELEASES, "1.1.0", (), "1.1.0"),
    ("~1.1", RELEASES, "1.2.0", (), None),
    ("~1.1", ["1.1.0", "1.1.5"], "1.1.3", (), "1.1.5"),
    ("*", ["1.0.0", "1.1.0"], "1.1.0-rc.1", (), "1.1.0"),
    (">=1.1.0-rc.1", ["1.1.0-rc.1", "1.1.0-rc.2"], "1.1.0-rc.2", (), "1.1.0-rc.2"),
    # an exact constraint ignores the floor: it names the version wanted
    ("1.0.0", RELEASES, "1.2.0", (), "1.0.0"),
    ("=1.1.0", RELEASES, "2.0.0", (), "1.1.0"),
    ("1.5.0", RELEASES, None, (), None),
    # skip
    ("^1.0", RELEASES, None, ("1.10.0",), "1.2.0"),
    ("^1.0", RELEASES, None, {"1.10.0", "1.2.0"}, "1.1.0"),
    ("^1.0", RELEASES, None, ("1.0.0", "1.1.0", "1.2.0", "1.10.0"), None),
    ("1.0.0", RELEASES, None, ("1.0.0",), None),
    ("1.0.0", RELEASES, "1.2.0", ("1.0.0",), None),
    ("^1.0", RELEASES, "1.2.0", ("1.10.0",), "1.2.0"),
    ("^1.0", RELEASES, "1.2.0", ("1.10.0", "1.2.0"), None),
]


@pytest.mark.parametrize(("text", "versions", "floor", "skip", "expected"), BEST)
def test_best(
    text: str, versions: list[str], floor: str | None, skip: tuple[str, ...], expected: str | None
) -> None:
    assert best(Constraint.parse(text), versions, floor=floor, skip=skip) == expected


def test_best_takes_any_iterable_once() -> None:
    assert best(Constraint.parse("^1.0"), iter(RELEASES)) == "1.10.0"


@pytest.mark.parametrize(
    ("versions", "skip", "bad"),
    [
        (["1.0.0", "1.2"], (), "1.2"),
        (["v1.0.0"], (), "v1.0.0"),
        (["1.0.0+build"], (), "1.0.0+build"),
        (["3.0.0", "nightly"], (), "nightly"),  # checked even though no constraint allows it
        (["1.0.0", "nightly"], ("nightly",), "nightly"),  # and even though it is skipped
    ],
)
def test_best_rejects_versions_that_are_not_versions(
    versions: list[str], skip: tuple[str, ...], bad: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(f"'{bad}' is not a version")):
        best(Constraint.parse("^1.0"), versions, skip=skip)


@pytest.mark.parametrize("text", ["^1.0", "1.0.0"])
def test_best_rejects_a_floor_that_is_not_a_version(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape("'1.2' is not a version")):
        best(Constraint.parse(text), RELEASES, floor="1.2")
