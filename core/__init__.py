"""The kernel: settings, database, errors, ids and clock. Imports nothing else of Vouch."""
