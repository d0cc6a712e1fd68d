"""The four packages are this repo's (PyPI has unrelated ones); the registry matches the server
config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphs import GRAPHS, UnknownGraphError, get_graph_info

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("package", ["graphs", "nodes", "tools", "memory"])
def test_top_level_packages_resolve_to_this_repo(package: str) -> None:
    module = __import__(package)
    assert Path(module.__file__).resolve().is_relative_to(REPO)


def test_langgraph_json_registers_exactly_the_cli_graphs() -> None:
    config = json.loads((REPO / "langgraph.json").read_text())
    registered = {
        graph_id: (entry["path"], entry["description"])
        for graph_id, entry in config["graphs"].items()
    }
    assert registered == {g.graph_id: (g.path, g.description) for g in GRAPHS.values()}


@pytest.mark.parametrize("graph_id", sorted(GRAPHS))
def test_every_graph_module_exports_a_server_ready_graph(graph_id: str) -> None:
    module = get_graph_info(graph_id).load_module()
    assert module.graph.name == graph_id
    assert module.graph.checkpointer is None, "the server supplies the checkpointer"
    assert module.graph.store is None, "the server supplies the store"
    assert callable(module.build_graph)
    # Studio renders these; on Python 3.11 a `typing.TypedDict` state makes them fail.
    output = module.graph.get_output_jsonschema()["properties"]
    assert {"final_answer", "success", "error", "usage"} <= set(output)
    assert module.graph.get_input_jsonschema()["properties"]
    context = module.graph.get_context_jsonschema()["properties"]
    assert all(spec.get("description") for spec in context.values()), "describe every field"


def test_unknown_graph_names_the_registered_ones() -> None:
    with pytest.raises(UnknownGraphError, match="registered graphs: .*react"):
        get_graph_info("reactt")
