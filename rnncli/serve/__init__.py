"""rnncli serve: the models behind HTTP (the optional `[serve]` extra: FastAPI on uvicorn).

  models.py    the models served: loaded once, named, described (GET /v1/models)
  answers.py   what a request is answered with: the same functions `predict` and `sample` call,
               fed from a request's inputs instead of a file (no HTTP here; tests call it directly)
  batcher.py   the micro-batcher: requests for one model and one set of options share a batch
  limits.py    the server's limits, and the ASGI guard that enforces the body size and time limits
  app.py       the routes, the token check and the error answers
  page.html    the playground served at GET / (static: user data reaches it only as JSON, shown as text)
"""
