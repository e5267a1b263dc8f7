"""RushCatalog: media catalogue for a NAS, processing agents, and a seedbox relocator."""

__version__ = "0.1.0"
