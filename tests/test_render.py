"""The human form of a plan: symbols, diffs, summary."""

from __future__ import annotations

from reconciler import plan as p
from ruvector.cli.render import render

PLAN = p.Plan(
    base_generation=3,
    actions=(
        p.Install("alpha", "1.0.0", "dir:/x/alpha", ("ReadSystemInfo",), True),
        p.Upgrade("beta", "1.0.0", "1.1.0", ("ReadProcessList",), ()),
        p.Reconfigure(
            "beta",
            (
                p.ConfigChange("max_tabs", 30, 20, "changed"),
                p.ConfigChange("token", None, "env:TOKEN", "added"),
            ),
        ),
        p.Remove("gamma", "0.3.0"),
        p.Hold("delta", "2.0.0", ("KillProcess",)),
    ),
    target=(),
    notes=("delta 2.0.0 is held: it needs approval of KillProcess.",),
)


def test_plan_reads_like_terraform() -> None:
    text = render(PLAN, colour=False)
    assert text.splitlines()[0] == "+ alpha"
    assert "    install 1.0.0 from dir:/x/alpha" in text
    assert "~ beta\n    upgrade 1.0.0 -> 1.1.0\n    + capability ReadProcessList" in text
    assert "      ~ max_tabs: 30 -> 20" in text
    assert '      + token = "env:TOKEN"' in text
    assert "- gamma\n    remove 0.3.0" in text
    assert "! delta\n    hold 2.0.0: needs approval of KillProcess" in text
    assert text.endswith("Plan: 1 to install, 1 to change, 1 to remove.")


def test_no_changes() -> None:
    text = render(p.Plan(1, (), ()), colour=False)
    assert text == "No changes. The installed plugins match ruvector.toml."
