"""The benchmarked GraphQL operations and, for each, the closest direct OMS REST call."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.settings import Settings
from gateway.upstream.client import DETAIL_PATH, LIST_PATH, SIMPLE_PATH

# Copied from tests/queries.py so the benchmark does not move when the tests do.
ITEM_FIELDS = """
fragment ItemFields on OrderItem {
  id
  state {
    id createdDate modifiedDate translations name config enumClass enumValue contentType
  }
  product {
    id images { id order url } createdDate modifiedDate omnitronId name baseCode sku barcode
    attributes attributesKwargs extraAttributes remoteModifiedDate
  }
  createdDate modifiedDate omnitronId netAmount price priceCurrency retailPrice taxRate
  taxAmount discountAmount withoutNetAmount installmentInterestAmount attributes
  attributesKwargs image
  priceList { id code name createdDate isAutoSync modifiedDate }
  stockList { id code name createdDate isAutoSync modifiedDate }
  extraField { priceExtraField stockExtraField }
  parentOmnitronId
  orderId
}
"""

# Every field list-simple serves: scalars plus the ids of state and product.
SLIM_FIELDS = """
fragment SlimFields on OrderItem {
  id createdDate modifiedDate omnitronId netAmount price priceCurrency retailPrice taxRate
  taxAmount discountAmount withoutNetAmount installmentInterestAmount attributes
  attributesKwargs image
  priceList { id code name createdDate isAutoSync modifiedDate }
  stockList { id code name createdDate isAutoSync modifiedDate }
  extraField { priceExtraField stockExtraField }
  parentOmnitronId orderId state { id } product { id }
}
"""

LIST = LIST_PATH
# The largest `limit` the upstream honours in one call.
UPSTREAM_LIMIT = Settings().upstream_max_limit
# 20 distinct ids spread over the 300 seeded items, so no page of a list could serve them.
BY_IDS = [1 + 15 * i for i in range(20)]


@dataclass(frozen=True, slots=True)
class Case:
    """One benchmarked operation."""

    key: str  # file-name friendly
    title: str
    query: str
    items: int  # how many items a correct answer holds
    direct_path: str  # the closest single OMS REST call
    direct_note: str


CASES: tuple[Case, ...] = (
    Case(
        "nested-list",
        "50-item nested list, every field",
        "query NestedList { orderItems(first: 50) { nodes { ...ItemFields } } }" + ITEM_FIELDS,
        50,
        f"{LIST}?limit=50&page=1",
        "the same 50 items from the full list",
    ),
    Case(
        "slim-list",
        "50-item slim list (list-simple fields)",
        "query SlimList { orderItems(first: 50) { nodes { ...SlimFields } } }" + SLIM_FIELDS,
        50,
        f"{SIMPLE_PATH}?limit=50&page=1",
        "the same 50 items from list-simple",
    ),
    Case(
        "detail",
        "detail, every field",
        "query Detail { orderItem(id: 1) { ...ItemFields } }" + ITEM_FIELDS,
        1,
        DETAIL_PATH.format(id=1),
        "the same item from the detail endpoint",
    ),
    Case(
        "by-ids",
        "orderItemsByIds, 20 distinct ids, every field",
        "query ByIds { orderItemsByIds(ids: ["
        + ", ".join(str(i) for i in BY_IDS)
        + "]) { ...ItemFields } }"
        + ITEM_FIELDS,
        20,
        f"{LIST}?limit=20&page=1",
        "closest single call: 20 full items in one list page "
        "(the gateway makes 20 detail calls, as a REST client would)",
    ),
    Case(
        "fan-out-250",
        "250-item nested list (fan-out), every field",
        "query FanOut { orderItems(first: 250) { nodes { ...ItemFields } } }" + ITEM_FIELDS,
        250,
        f"{LIST}?limit={UPSTREAM_LIMIT}&page=1",
        f"closest single call: one {UPSTREAM_LIMIT}-item page (the upstream caps limit at "
        f"{UPSTREAM_LIMIT}; "
        "the gateway fetches several pages concurrently)",
    ),
)


def case_by_key(key: str) -> Case:
    for case in CASES:
        if case.key == key:
            return case
    raise KeyError(f"unknown query {key!r}; choose from {', '.join(c.key for c in CASES)}")


def count_items(data: object) -> int:
    """How many items a response's `data` holds, whichever root field answered."""
    if not isinstance(data, dict) or not data:
        return 0
    (root,) = data.values()
    if isinstance(root, dict) and "nodes" in root:
        return len(root["nodes"])
    if isinstance(root, list):
        return sum(1 for item in root if item is not None)
    return 1 if root is not None else 0
