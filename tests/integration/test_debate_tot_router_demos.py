"""`weft demo debate|tot|router`: each bundled demo runs offline through the real CLI path."""

from __future__ import annotations

import pytest

from graphs.cli import main

EXPECTED = {
    "debate": ("Use a managed identity provider", "debate_agreement"),
    "tot": ("6 × (9 − 4) = 30", "tot_level"),
    "router": ('"expected_delivery": "2026-11-27"', "routed"),
}


@pytest.mark.parametrize("graph_id", sorted(EXPECTED))
def test_demo_answers_offline(
    graph_id: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The demo points its own process at its scripted server; setting the variables here first
    # makes monkeypatch restore them afterwards.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    assert main(["demo", graph_id]) == 0
    captured = capsys.readouterr()
    answer, progress_event = EXPECTED[graph_id]
    assert answer in captured.out
    assert progress_event in captured.err
    assert "scripted answers" in captured.err
