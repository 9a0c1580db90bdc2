"""The local web app (``stylecloak serve``): a page for artists and a JSON API, with jobs kept in SQLite.

Needs the ``web`` extra (FastAPI, uvicorn, python-multipart). Import :func:`stylecloak.web.app.create_app` to
embed the app in another ASGI server.
"""
