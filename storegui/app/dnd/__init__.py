"""Drag and drop on the key tree: files dropped in, keys dragged out or moved."""
