"""The marketplace: expert profiles, credentials, discovery and fixed-scope engagements."""
