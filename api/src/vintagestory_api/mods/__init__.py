"""Installed mods and their updates in the mod database."""
