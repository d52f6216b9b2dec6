"""Shared pieces every stage uses: typed configs, the records passed between stages, offline setup."""
