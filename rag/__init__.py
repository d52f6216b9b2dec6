"""Retrieval: chunk documents, embed them, keep them in Chroma with a manifest, and search."""
