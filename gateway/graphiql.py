"""The GraphiQL page, opened on a ready example operation instead of the generic welcome text."""

from __future__ import annotations

import json
import re

from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute
from strawberry.http.ides import get_graphql_ide_html

from gateway.settings import Settings

EXAMPLE_QUERY = """\
# Order items from the Akinon OMS, through the gateway.
# The nested list reads the full list endpoint; the slim list only needs list-simple.
query Example {
  nested: orderItems(first: 5) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      orderId
      price
      priceCurrency
      state { id enumValue name(locale: "tr-tr") }
      product { id name sku images { url } }
    }
  }
  slim: orderItems(first: 5) {
    nodes { id netAmount state { id } product { id } }
  }
}
"""

_EXAMPLE_CONSTANT = re.compile(r"const EXAMPLE_QUERY = `.*?`;", re.DOTALL)


def graphiql_html(template: str) -> str:
    # json.dumps gives a JS string literal; "</" is escaped so the query cannot close the script.
    literal = json.dumps(EXAMPLE_QUERY).replace("</", "<\\/")
    return _EXAMPLE_CONSTANT.sub(lambda _: f"const EXAMPLE_QUERY = {literal};", template, count=1)


def graphiql_response(settings: Settings) -> Response:
    """The GraphiQL page a browser gets at /graphql."""
    return HTMLResponse(graphiql_html(get_graphql_ide_html("graphiql")))


def graphiql_routes() -> list[BaseRoute]:
    """Routes for GraphiQL's own assets (none yet: the page loads them from a CDN)."""
    return []
