"""The web layer: routes, request bodies and queries, tokens, the audit trail and the OpenAPI
description. It decides HTTP; it reaches stores and daemons only through the use cases' ``Deps``."""
