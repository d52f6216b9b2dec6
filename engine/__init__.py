"""The model engine: load a model once, prompt it, generate batched or streamed, switch adapters."""
