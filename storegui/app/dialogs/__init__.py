"""The app's dialogs: About, and Open Workspace."""
