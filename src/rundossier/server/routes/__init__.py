"""The API's routes, one module per resource; each takes what it reads from `server.deps`."""
