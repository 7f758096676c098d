"""Numbers every layer agrees on."""

# The largest id or amount a 32-bit signed integer column holds (PostgreSQL's `integer`):
# larger ids in a path are 404, in a body 422, before they reach the database.
INT32_MAX = 2**31 - 1
