"""Helpers shared by the rag tests (not a test module)."""

from pathlib import Path


def collection_ids(workdir: Path, collection: str = "docs") -> list[str]:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(workdir / "chroma"), settings=Settings(anonymized_telemetry=False))
    ids = client.get_collection(collection).get(include=[])["ids"]
    return sorted(ids)
