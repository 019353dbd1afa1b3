"""GraphQL documents shared by the tests."""

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


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def expected_item(raw: dict) -> dict:
    """What the contract says the gateway returns for an upstream item, independently derived."""

    def named(obj: dict, renames: dict[str, str] | None = None, drop: tuple = ()) -> dict:
        renames = renames or {}
        out = {}
        for key, value in obj.items():
            if key in drop:
                continue
            out[renames.get(key, camel(key))] = value
        return out

    item = named(raw, {"order": "orderId"})
    item["id"] = str(raw["id"])
    item["state"] = {**named(raw["state"]), "id": str(raw["state"]["id"])}
    product = named(raw["product"], {"productimage_set": "images"})
    product["id"] = str(raw["product"]["id"])
    product["images"] = [
        {"id": str(i["id"]), "order": i["order"], "url": i["url"]}
        for i in raw["product"]["productimage_set"]
    ]
    item["product"] = product
    extra = raw["extra_field"]
    item["extraField"] = None if extra is None else named(extra)
    for key in ("price_list", "stock_list"):
        value = raw[key]
        item[camel(key)] = (
            None if value is None else {**named(value, {"pk": "id"}), "id": str(value["pk"])}
        )
    return item


def slim_expected(raw: dict) -> dict:
    item = expected_item(raw)
    item["state"] = {"id": item["state"]["id"]}
    item["product"] = {"id": item["product"]["id"]}
    return item
