"""World backups: taken consistently, verified, compressed, pruned, downloaded and restored."""
