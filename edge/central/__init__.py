"""The central side: what the people who read alerts run (never on a device)."""
