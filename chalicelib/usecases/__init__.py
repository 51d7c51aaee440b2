"""Use cases behind the routes, by concern; they return plain data, the web layer decides HTTP."""
