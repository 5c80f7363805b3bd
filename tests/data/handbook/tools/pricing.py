"""Price calculations for the garden store."""

from decimal import Decimal

VAT_RATE = Decimal("0.21")


def price_with_vat(net: Decimal) -> Decimal:
    """The gross price: the net price plus value added tax at VAT_RATE."""
    return (net * (1 + VAT_RATE)).quantize(Decimal("0.01"))


class LoyaltyCard:
    """A customer's loyalty card that collects points on every purchase."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.points = 0

    @staticmethod
    def points_for(amount: Decimal) -> int:
        """One loyalty point for every full ten euros spent."""
        return int(amount // 10)

    def add_purchase(self, amount: Decimal) -> int:
        """Record a purchase and return the card's new point balance."""
        self.points += self.points_for(amount)
        return self.points
