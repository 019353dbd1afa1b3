"""Object types over the upstream JSON: each Python attribute is the upstream key it reads.

Resolved values are the upstream's own dicts; the schema's default resolver reads them by key, so
a leaf field costs one dict lookup and the GraphQL names differ only where the contract says so.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import strawberry
from strawberry.scalars import JSON

from gateway.errors import UpstreamBadResponse
from schema.scalars import DateTime, Decimal

Raw = dict[str, Any]

# Field metadata the compiled path reads (gateway/execution/compiled.py), declared on the field:
PURE = "gateway.pure"  # its resolver is a pure function of its parent and arguments
# Its values are Python objects read by attribute, not upstream dicts: said alike by every field
# giving a type, since `make_schema` installs one reader per field of that type (`schema.Read`).
OBJECTS = "gateway.objects"
# Called with its default arguments, its resolver answers the parent dict's string under this
# key, else null: the compiled path reads the key instead of calling it (a test holds the two
# equal).
DEFAULT_KEY = "gateway.default_key"


def _f(description: str, name: str | None = None) -> Any:
    return strawberry.field(description=description, name=name)


@strawberry.type(description="One localized attribute of a product, typed for convenience.")
class AttributeValue:
    key: str = _f("The attribute's key, as in `attributes`.")
    label: str | None = _f("The human-readable label (from `attributesKwargs`).")
    value: str | None = _f("The attribute's value; non-text values are given as JSON text.")
    data_type: str | None = _f("The attribute's data type, such as `dropdown`.")


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def attribute_values(root: strawberry.Parent[Raw]) -> list[AttributeValue]:
    """Merge `attributes_kwargs` (label, value, type) with plain `attributes` values."""
    kwargs = root.get("attributes_kwargs") or {}
    plain = root.get("attributes") or {}
    if not isinstance(kwargs, dict) or not isinstance(plain, dict):
        raise UpstreamBadResponse("The OMS API sent attributes that are not a map.")
    values: list[AttributeValue] = []
    for key, spec in kwargs.items():
        spec = spec if isinstance(spec, dict) else {"value": spec}
        values.append(
            AttributeValue(
                key=key,
                label=_text(spec.get("label")),
                value=_text(spec.get("value", plain.get(key))),
                data_type=_text(spec.get("data_type")),
            )
        )
    for key, value in plain.items():
        if key not in kwargs:
            values.append(AttributeValue(key=key, label=None, value=_text(value), data_type=None))
    return values


def state_name(
    root: strawberry.Parent[Raw],
    locale: Annotated[
        str | None,
        strawberry.argument(description="A locale such as `tr-tr`, `en-US` or just `tr`."),
    ] = None,
) -> str | None:
    """The translated name for `locale`, else the state's default name."""
    if locale and isinstance(translations := root.get("translations"), dict):
        wanted = locale.lower().replace("_", "-")
        for candidate in (wanted, wanted.split("-", 1)[0]):
            for code, entry in translations.items():
                code = code.lower()
                if (code == candidate or code.split("-", 1)[0] == candidate) and isinstance(
                    entry, dict
                ):
                    name = entry.get("name")
                    if isinstance(name, str):
                        return name
    name = root.get("name")
    return name if isinstance(name, str) else None


@strawberry.type(description="The status of an order item, such as Approved or Preparing.")
class State:
    id: strawberry.ID = _f("The primary key of the state.")
    created_date: DateTime | None = _f("The creation date.")
    modified_date: DateTime | None = _f("The last modified date.")
    translations: JSON | None = _f('Names by locale, such as `{"tr-tr": {"name": "..."}}`.')
    name: str | None = strawberry.field(
        resolver=state_name,
        metadata={PURE: True, DEFAULT_KEY: "name"},
        description=(
            "The state's name. With `locale` (such as `tr-tr`, `en-US` or `tr`), the translation "
            "for that locale; without one, or when there is none, the default name."
        ),
    )
    config: JSON | None = _f("The state's configuration.")
    enum_class: str | None = _f('The enumeration the state belongs to, such as "OrderStatus".')
    enum_value: str | None = _f('The state\'s code in that enumeration, such as "450".')
    content_type: int | None = _f("The content type of the state.")


@strawberry.type(description="An image of a product.")
class ProductImage:
    id: strawberry.ID = _f("The primary key of the image.")
    order: int | None = _f("The image's position among the product's images.")
    url: str | None = _f("The image's address.")


@strawberry.type(description="The product an order item sells.")
class Product:
    id: strawberry.ID = _f("The primary key of the product.")
    productimage_set: list[ProductImage] = _f("The product's images.", name="images")
    created_date: DateTime | None = _f("The creation date.")
    modified_date: DateTime | None = _f("The last modified date.")
    omnitron_id: int | None = _f("The primary key of the product on omnitron.")
    name: str | None = _f("The product's name.")
    base_code: str | None = _f("The product's base code.")
    sku: str | None = _f("The product's stock keeping unit.")
    barcode: str | None = _f("The product's barcode.")
    attributes: JSON | None = _f("The product's properties, such as color and size.")
    attributes_kwargs: JSON | None = _f(
        "The same properties with their label, value and data type."
    )
    extra_attributes: JSON | None = _f("Additional properties of the product.")
    remote_modified_date: DateTime | None = _f("When the product last changed on omnitron.")
    attribute_values: list[AttributeValue] = strawberry.field(
        resolver=attribute_values,
        metadata={PURE: True, OBJECTS: True},
        description="`attributes` and `attributesKwargs` merged into typed entries.",
    )


@strawberry.type(description="The price list an order item was priced from.")
class PriceList:
    pk: strawberry.ID = _f("The primary key of the price list.", name="id")
    code: str | None = _f("The price list's code.")
    name: str | None = _f("The price list's name.")
    created_date: DateTime | None = _f("The creation date.")
    is_auto_sync: bool | None = _f("Whether the list synchronizes automatically.")
    modified_date: DateTime | None = _f("The last modified date.")


@strawberry.type(description="The stock list an order item was fulfilled from.")
class StockList:
    pk: strawberry.ID = _f("The primary key of the stock list.", name="id")
    code: str | None = _f("The stock list's code.")
    name: str | None = _f("The stock list's name.")
    created_date: DateTime | None = _f("The creation date.")
    is_auto_sync: bool | None = _f("Whether the list synchronizes automatically.")
    modified_date: DateTime | None = _f("The last modified date.")


@strawberry.type(description="Additional information for an order item.")
class ExtraField:
    price_extra_field: JSON | None = _f("Additional price information.")
    stock_extra_field: JSON | None = _f("Additional stock information.")


@strawberry.type(description="An item of an order in the OMS.")
class OrderItem:
    id: strawberry.ID = _f("The primary key of the order item.")
    state: State = _f(
        "The status information of the order item. Selecting only `id` keeps list queries "
        "on the cheaper list-simple endpoint."
    )
    product: Product = _f(
        "The product information of the order item. Selecting only `id` keeps list queries "
        "on the cheaper list-simple endpoint."
    )
    created_date: DateTime | None = _f("The creation date.")
    modified_date: DateTime | None = _f("The last modified date.")
    omnitron_id: int | None = _f("The primary key of the order item on omnitron.")
    net_amount: Decimal | None = _f("The net amount of the order item.")
    price: Decimal | None = _f("The price of the order item.")
    price_currency: str | None = _f("The currency of the price.")
    retail_price: Decimal | None = _f("The retail price of the order item.")
    tax_rate: Decimal | None = _f("The tax rate of the order item.")
    tax_amount: Decimal | None = _f("The tax amount of the order item.")
    discount_amount: Decimal | None = _f("The discount amount of the order item.")
    without_net_amount: Decimal | None = _f("The without net amount of the order item.")
    installment_interest_amount: Decimal | None = _f(
        "The installment interest amount of the order item."
    )
    attributes: JSON | None = _f(
        "The properties of the order item such as sku, base code, color etc."
    )
    attributes_kwargs: JSON | None = _f("The above data in key-value format.")
    image: JSON | None = _f("The image information of the order item.")
    price_list: PriceList | None = _f("The price list information of the order item.")
    stock_list: StockList | None = _f("The stock list information of the order item.")
    extra_field: ExtraField | None = _f("The additional information for the order item.")
    parent_omnitron_id: int | None = _f("The information for bundled order items.")
    order: int = _f("The order ID of the order item.", name="orderId")


@strawberry.type(description="Pagination state of a connection.")
class PageInfo:
    has_next_page: bool = _f("Whether items follow this page.")
    has_previous_page: bool = _f("Whether items precede this page.")
    start_cursor: str | None = _f("The cursor of the first edge, if any.")
    end_cursor: str | None = _f("The cursor of the last edge; pass it as `after` for more.")


@strawberry.type(description="An order item with its cursor.")
class OrderItemEdge:
    cursor: str = _f("An opaque cursor; pass it as `after` to continue after this item.")
    node: OrderItem = _f("The order item.")


@strawberry.type(description="A page of order items, usable as a Relay connection or by page.")
class OrderItemConnection:
    total_count: int = _f("How many items match, over all pages (the upstream's `count`).")
    page_info: PageInfo = _f("Pagination state of this page.")
    nodes: list[OrderItem] = _f("The items of this page.")
    edges: list[OrderItemEdge] = _f("The items of this page, each with a cursor.")
