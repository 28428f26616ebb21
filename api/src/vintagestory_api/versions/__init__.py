"""Game versions published for download, and whether the installed server is behind."""
