"""Read-only customer-service tools over a small built-in sample shop (the router example).

The data is a fixed fixture so demos and tests are reproducible; a real deployment replaces
these tools with ones that call its order and catalogue systems, keeping names and arguments.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.tools import BaseTool, ToolException, tool
from pydantic import BaseModel, Field

SAMPLE_ORDERS: dict[str, dict[str, Any]] = {
    "A-1001": {
        "status": "shipped",
        "items": ["Trail running shoes (42)"],
        "shipped_on": "2026-11-20",
        "expected_delivery": "2026-11-27",
        "carrier": "DHL",
        "refund_eligible": True,
        "refund_note": "unworn items can be returned within 30 days of delivery",
    },
    "A-1002": {
        "status": "delivered",
        "items": ["Merino base layer (M)", "Wool socks x3"],
        "shipped_on": "2026-09-02",
        "expected_delivery": "2026-09-05",
        "carrier": "UPS",
        "refund_eligible": False,
        "refund_note": "the 30-day return window closed on 2026-10-05",
    },
    "A-1003": {
        "status": "processing",
        "items": ["Ultralight tent (2p)"],
        "shipped_on": None,
        "expected_delivery": "2026-12-03",
        "carrier": None,
        "refund_eligible": True,
        "refund_note": "not shipped yet: cancelling gives a full refund",
    },
}

SAMPLE_PRODUCTS: list[dict[str, Any]] = [
    {
        "sku": "SH-42",
        "name": "Trail running shoes",
        "price_eur": 129.0,
        "in_stock": True,
        "tags": ["shoes", "running", "trail"],
    },
    {
        "sku": "TE-2P",
        "name": "Ultralight tent (2p)",
        "price_eur": 349.0,
        "in_stock": False,
        "tags": ["tent", "camping", "ultralight"],
    },
    {
        "sku": "BL-M",
        "name": "Merino base layer",
        "price_eur": 79.0,
        "in_stock": True,
        "tags": ["merino", "wool", "base layer", "clothing"],
    },
]

_METADATA = {
    "side_effect": "read",
    "idempotent": True,
    "timeout_s": 5.0,
    "rate_limit": None,
    "fallback": None,
}


class OrderArgs(BaseModel):
    """Arguments naming one order."""

    order_id: str = Field(description="The order id, e.g. 'A-1001'.", min_length=1, max_length=32)


class SearchProductsArgs(BaseModel):
    """Arguments of `search_products`."""

    query: str = Field(description="Words to look for in product names and tags.", min_length=1)


def _order(order_id: str) -> dict[str, Any]:
    key = order_id.strip().upper()
    if key not in SAMPLE_ORDERS:
        raise ToolException(
            f"Error: no order {order_id!r}; order ids look like 'A-1001'. Ask the customer to "
            "check the id in their confirmation email."
        )
    return SAMPLE_ORDERS[key]


@tool("look_up_order", args_schema=OrderArgs)
def look_up_order(order_id: str) -> str:
    """Look up an order's status, items, shipping dates and carrier."""
    order = _order(order_id)
    fields = ("status", "items", "shipped_on", "expected_delivery", "carrier")
    return json.dumps({"order_id": order_id.upper(), **{k: order[k] for k in fields}})


@tool("check_refund_eligibility", args_schema=OrderArgs)
def check_refund_eligibility(order_id: str) -> str:
    """Check whether an order can be refunded under the return policy, and why."""
    order = _order(order_id)
    return json.dumps(
        {
            "order_id": order_id.upper(),
            "eligible": order["refund_eligible"],
            "note": order["refund_note"],
        }
    )


@tool("search_products", args_schema=SearchProductsArgs)
def search_products(query: str) -> str:
    """Search the product catalogue by name or tag; returns price and stock for each match."""
    words = [w for w in query.casefold().split() if w]
    matches = [
        p
        for p in SAMPLE_PRODUCTS
        if any(w in p["name"].casefold() or any(w in t for t in p["tags"]) for w in words)
    ]
    if not matches:
        return json.dumps({"matches": [], "note": f"no product matches {query!r}"})
    return json.dumps({"matches": matches})


for _tool in (look_up_order, check_refund_eligibility, search_products):
    _tool.metadata = dict(_METADATA)
    _tool.tags = ["customer_service", "example"]


def customer_service_tools() -> list[BaseTool]:
    """Every customer-service example tool."""
    return [look_up_order, check_refund_eligibility, search_products]


__all__ = [
    "check_refund_eligibility",
    "customer_service_tools",
    "look_up_order",
    "search_products",
]
