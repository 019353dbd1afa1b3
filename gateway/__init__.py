"""The OMS GraphQL gateway: ASGI app, settings, upstream client, errors, CLI and demo upstream."""
