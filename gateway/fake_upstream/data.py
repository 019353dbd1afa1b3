"""Deterministic, seeded order items shaped exactly like the vendor documentation's examples."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

Item = dict[str, Any]

#: The documentation's example item (the full-list example), served as item 1 on every endpoint.
DOC_ITEM: Item = {
    "id": 1,
    "state": {
        "id": 1,
        "created_date": "2021-06-30T14:43:26.801262Z",
        "modified_date": "2022-10-14T10:39:33.568211Z",
        "translations": {"en-us": {"name": "Preparing"}, "tr-tr": {"name": "Hazırlanıyor"}},
        "name": "Preparing",
        "config": {},
        "enum_class": "OrderStatus",
        "enum_value": "450",
        "content_type": 1,
    },
    "product": {
        "id": 1,
        "productimage_set": [
            {
                "order": 1,
                "id": 1,
                "url": "https://{cdn_url}/products/2021/03/17/8/604303c1-e2f9-4e78-a666-67d75bbca1e3.jpg",
                "product": 1,
            }
        ],
        "created_date": "2021-07-07T08:17:49.890983Z",
        "modified_date": "2022-02-09T08:14:57.425198Z",
        "omnitron_id": 8,
        "name": "Urun8",
        "base_code": "8",
        "sku": "8",
        "barcode": None,
        "attributes": {
            "renk": "SİYAH",
            "beden": "L",
            "integration_size": "L",
            "integration_color": "SİYAH",
            "integration_gram1": "One size",
            "integration_SizeId": "S",
            "integration_ColorId": "SİYAH",
        },
        "attributes_kwargs": {
            "renk": {"label": "SİYAH", "value": "SİYAH", "data_type": "dropdown"},
            "beden": {"label": "Large", "value": "L", "data_type": "dropdown"},
            "integration_size": {"label": "L", "value": "L", "data_type": "dropdown"},
            "integration_color": {"label": "BLACK", "value": "SİYAH", "data_type": "dropdown"},
            "integration_gram1": {
                "label": "One Size",
                "value": "One size",
                "data_type": "dropdown",
            },
            "integration_SizeId": {"label": "S", "value": "S", "data_type": "dropdown"},
            "integration_ColorId": {"label": "SİYAH", "value": "SİYAH", "data_type": "dropdown"},
        },
        "extra_attributes": {},
        "remote_modified_date": "2022-02-03T11:53:24.467975Z",
    },
    "created_date": "2021-07-07T08:17:49.927569Z",
    "modified_date": "2021-07-07T08:42:21.265143Z",
    "omnitron_id": 1,
    "net_amount": "599.99",
    "price": "599.99",
    "price_currency": "try",
    "retail_price": "1000.00",
    "tax_rate": "8.00",
    "tax_amount": None,
    "discount_amount": "0.00",
    "without_net_amount": None,
    "installment_interest_amount": None,
    "attributes": {},
    "attributes_kwargs": {},
    "image": None,
    "price_list": {
        "pk": 1,
        "code": None,
        "name": "test_fiyat_list",
        "created_date": "2021-02-25T13:41:08.252536Z",
        "is_auto_sync": False,
        "modified_date": "2021-02-25T13:41:08.252562Z",
    },
    "stock_list": {
        "pk": 34,
        "code": None,
        "name": "test_stok_list",
        "created_date": "2021-02-25T13:41:20.523128Z",
        "is_auto_sync": False,
        "modified_date": "2021-02-25T13:41:20.523152Z",
    },
    "extra_field": {"price_extra_field": {}, "stock_extra_field": {}},
    "parent_omnitron_id": None,
    "order": 1,
}

_STATES = [("400", "Approved", "Onaylandı"), ("425", "Inactive", "Pasif"),
           ("450", "Preparing", "Hazırlanıyor"), ("500", "Shipped", "Kargoya Verildi"),
           ("550", "Delivered", "Teslim Edildi")]  # fmt: skip
_COLORS = [("SİYAH", "BLACK"), ("BEYAZ", "WHITE"), ("KIRMIZI", "RED"), ("LACİVERT", "NAVY"),
           ("YEŞİL", "GREEN"), ("GRİ", "GREY")]  # fmt: skip
_SIZES = [("XS", "Extra Small"), ("S", "Small"), ("M", "Medium"), ("L", "Large"),
          ("XL", "Extra Large")]  # fmt: skip
_NAMES = ["Tişört", "Gömlek", "Kazak", "Ceket", "Pantolon", "Etek", "Şort", "Çanta", "Ayakkabı",
          "Şapka", "Eşofman", "Hırka"]  # fmt: skip
_CURRENCIES = ["try", "try", "try", "usd", "eur"]
_EPOCH = datetime(2021, 2, 1, tzinfo=UTC)


def _stamp(rng: random.Random, after: datetime, days: int = 400) -> tuple[str, datetime]:
    moment = after + timedelta(
        seconds=rng.randrange(1, days * 86400), microseconds=rng.randrange(10**6)
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), moment


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _state(state_id: int) -> Item:
    if state_id == 1:
        return copy.deepcopy(DOC_ITEM["state"])
    rng = random.Random(f"state-{state_id}")
    code, en, tr = _STATES[(state_id - 2) % len(_STATES)]
    created, moment = _stamp(rng, _EPOCH)
    modified, _ = _stamp(rng, moment)
    return {
        "id": state_id, "created_date": created, "modified_date": modified,
        "translations": {"en-us": {"name": en}, "tr-tr": {"name": tr}},
        "name": en, "config": {} if state_id % 2 else {"notify": True},
        "enum_class": "OrderStatus", "enum_value": code, "content_type": 1,
    }  # fmt: skip


def _product(product_id: int) -> Item:
    if product_id == 1:
        return copy.deepcopy(DOC_ITEM["product"])
    rng = random.Random(f"product-{product_id}")
    color, color_en = rng.choice(_COLORS)
    size, size_en = rng.choice(_SIZES)
    created, moment = _stamp(rng, _EPOCH)
    modified, moment2 = _stamp(rng, moment)
    remote, _ = _stamp(rng, moment2, 30)
    images = [
        {"order": n, "id": product_id * 10 + n, "product": product_id,
         "url": f"https://{{cdn_url}}/products/2021/{product_id:04d}/{n}.jpg"}
        for n in range(1, rng.randrange(0, 4) + 1)
    ]  # fmt: skip
    attributes: dict[str, Any] = {"renk": color, "beden": size, "integration_color": color}
    kwargs = {
        "renk": {"label": color, "value": color, "data_type": "dropdown"},
        "beden": {"label": size_en, "value": size, "data_type": "dropdown"},
        "integration_color": {"label": color_en, "value": color, "data_type": "dropdown"},
    }
    return {
        "id": product_id, "productimage_set": images, "created_date": created,
        "modified_date": modified, "omnitron_id": 100 + product_id,
        "name": f"{rng.choice(_NAMES)} {color.title()} {product_id}",
        "base_code": f"BC{product_id:05d}", "sku": f"SKU{product_id:06d}",
        "barcode": None if product_id % 4 == 0 else f"869{product_id:010d}",
        "attributes": attributes, "attributes_kwargs": kwargs,
        "extra_attributes": {} if product_id % 3 else {"season": "2022 İlkbahar"},
        "remote_modified_date": remote,
    }  # fmt: skip


def _named_list(kind: str, pk: int) -> Item:
    if pk == 1 and kind == "price":
        return copy.deepcopy(DOC_ITEM["price_list"])
    if pk == 34 and kind == "stock":
        return copy.deepcopy(DOC_ITEM["stock_list"])
    rng = random.Random(f"{kind}-{pk}")
    created, moment = _stamp(rng, _EPOCH, 30)
    modified, _ = _stamp(rng, moment, 30)
    label = "fiyat" if kind == "price" else "stok"
    return {
        "pk": pk, "code": None if pk % 2 else f"{kind.upper()}-{pk}",
        "name": f"{label}_listesi_{pk}", "created_date": created,
        "is_auto_sync": pk % 3 == 0, "modified_date": modified,
    }  # fmt: skip


def order_number_of(order_id: int) -> str:
    """The human-facing order number of an order id (the `order_number` filter's value)."""
    return f"{2021000000 + order_id}"


def make_items(count: int = 300, seed: int = 7) -> list[Item]:
    """`count` items; shared products, states and lists; bundles and nulls where docs allow."""
    rng = random.Random(seed)
    states = {i: _state(i) for i in range(1, 7)}
    products = {i: _product(i) for i in range(1, 41)}
    price_lists = {pk: _named_list("price", pk) for pk in (1, 2, 3)}
    stock_lists = {pk: _named_list("stock", pk) for pk in (34, 35, 36)}
    items = [copy.deepcopy(DOC_ITEM)]
    order_id, left_in_order = 1, 0
    for item_id in range(2, count + 1):
        if left_in_order == 0:
            order_id += 1
            left_in_order = rng.randrange(1, 6)
        left_in_order -= 1
        price = Decimal(rng.randrange(1999, 250000)) / 100
        retail = price + Decimal(rng.choice([0, 0, 5000, 12500])) / 100
        discount = retail - price
        tax_rate = Decimal(rng.choice([1, 8, 10, 18, 20]))
        created, moment = _stamp(rng, datetime(2021, 7, 1, tzinfo=UTC))
        modified, _ = _stamp(rng, moment, 20)
        parent = items[-1]["omnitron_id"] if rng.random() < 0.08 else None
        product = products[rng.randrange(1, 41)]
        items.append({
            "id": item_id, "state": copy.deepcopy(states[rng.randrange(1, 7)]),
            "product": copy.deepcopy(product), "created_date": created,
            "modified_date": modified, "omnitron_id": 1000 + item_id,
            "net_amount": _money(price), "price": _money(price),
            "price_currency": rng.choice(_CURRENCIES), "retail_price": _money(retail),
            "tax_rate": _money(tax_rate),
            "tax_amount": None if rng.random() < 0.3 else _money(price * tax_rate / 100),
            "discount_amount": _money(discount),
            "without_net_amount": None if rng.random() < 0.5 else _money(price - discount),
            "installment_interest_amount": None if rng.random() < 0.8 else _money(price / 50),
            "attributes": {} if rng.random() < 0.5 else {"gift_note": "Doğum günün kutlu olsun!"},
            "attributes_kwargs": {},
            "image": None if rng.random() < 0.7 else {"url": product["productimage_set"][0]["url"]}
            if product["productimage_set"] else None,
            "price_list": copy.deepcopy(price_lists[rng.choice((1, 2, 3))]),
            "stock_list": copy.deepcopy(stock_lists[rng.choice((34, 35, 36))]),
            "extra_field": {"price_extra_field": {}, "stock_extra_field": {}}
            if rng.random() < 0.8 else {"price_extra_field": {"campaign": "KAMPANYA-10"},
                                        "stock_extra_field": {"warehouse": "İstanbul"}},
            "parent_omnitron_id": parent, "order": order_id,
        })  # fmt: skip
    return items


def simple_view(item: Item) -> Item:
    """The list-simple shape: state, order and product as integer ids, no nested objects."""
    slim = {k: v for k, v in item.items() if k not in ("state", "product", "order")}
    slim["state"] = item["state"]["id"]
    slim["order"] = item["order"]
    slim["product"] = item["product"]["id"]
    return slim
