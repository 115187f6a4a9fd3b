"""The one place that knows a session folder: its files, its schema, its writers and its reader."""
