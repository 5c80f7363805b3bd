"""Money and metering: usage events now; plans, ledger, escrow and Stripe later."""
