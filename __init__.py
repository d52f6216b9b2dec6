"""ragtune: from a folder of documents to a measured answer.

The checkout's top folder is this package: ragtune.rag is rag/, ragtune.app is app.py, and
configs/ and sample/ ship as its data (see [tool.setuptools] in pyproject.toml)."""
