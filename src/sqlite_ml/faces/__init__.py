"""Where users meet sqlite-ml: the ``sqml`` command and its shell, the demo, the entry of
the sqlite3 shell, the Datasette and sqlite-utils plugins, the HTML report."""
