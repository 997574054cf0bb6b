"""The panels beside the key tree: metadata, preview and search results."""
