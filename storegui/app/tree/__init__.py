"""The key tree: its nodes, its model, the work it does on workers, and its view."""
