"""Request handlers, one module per page family; `web/routes.py` lists them all.

Each handler parses the request, makes one call into a query or service function
(`web.queries`, `web.asset_context`, `rush.decisions`, the `ActionService`) and renders or
answers JSON.  Domain errors become HTTP errors in `web.errors`, not here.
"""
