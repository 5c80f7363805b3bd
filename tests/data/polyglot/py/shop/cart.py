"""A shopping cart: line items, discounts and the checkout total."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

TAX_RATE = Decimal("0.20")
MAX_QUANTITY = 99


def cents(amount: Decimal) -> int:
    return int(amount * 100)


def euros(cents: int) -> Decimal:
    return Decimal(cents) / 100


Currency = str
DEFAULT_CURRENCY: Currency = "EUR"


@dataclass(frozen=True)
class Item:
    sku: str
    price: int
    quantity: int = 1


class CartError(Exception):
    """A cart operation that cannot be done."""

    def __init__(self, sku: str, reason: str) -> None:
        super().__init__(f"{sku}: {reason}")
        self.sku = sku
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot change {self.sku}: {self.reason}"


# A cart belongs to one customer and lives until checkout.
class Cart:
    """A customer's cart of items, with at most one discount code."""

    currency = DEFAULT_CURRENCY

    def __init__(self, customer: str) -> None:
        self.customer = customer
        self.items: dict[str, Item] = {}
        self.discount: Cart.Discount | None = None

    # Adding an item twice raises its quantity.
    def add(self, item: Item) -> None:
        current = self.items.get(item.sku)
        quantity = item.quantity + (current.quantity if current else 0)
        if quantity > MAX_QUANTITY:
            raise CartError(item.sku, f"at most {MAX_QUANTITY} per item")
        self.items[item.sku] = Item(item.sku, item.price, quantity)

    def remove(self, sku: str) -> None:
        if sku not in self.items:
            raise CartError(sku, "not in the cart")
        del self.items[sku]

    def clear(self) -> None:
        self.items.clear()
        self.discount = None

    def count(self) -> int:
        """How many units the cart holds, all items together."""
        return sum(item.quantity for item in self.items.values())

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, sku: object) -> bool:
        return sku in self.items

    def skus(self) -> list[str]:
        return sorted(self.items)

    def quantity_of(self, sku: str) -> int:
        item = self.items.get(sku)
        return item.quantity if item else 0

    def apply(self, discount: Cart.Discount) -> None:
        if self.discount is not None:
            raise CartError(discount.code, "one discount per cart")
        self.discount = discount

    @property
    def subtotal(self) -> int:
        return sum(item.price * item.quantity for item in self.items.values())

    @property
    def tax(self) -> int:
        return math.ceil(self.taxable * TAX_RATE)

    @property
    def taxable(self) -> int:
        if self.discount is None:
            return self.subtotal
        return self.discount.reduce(self.subtotal)

    @property
    def total(self) -> int:
        return self.taxable + self.tax

    def summary(self) -> list[str]:
        lines = [f"{item.quantity} x {item.sku}" for item in self.items.values()]
        lines.append(f"total {euros(self.total)} {self.currency}")
        return lines

    @dataclass
    class Discount:
        code: str
        percent: int = 10
        skus: list[str] = field(default_factory=list)

        def reduce(self, amount: int) -> int:
            return amount - amount * self.percent // 100


def checkout(cart: Cart) -> dict[str, object]:
    if not cart.items:
        raise CartError("-", "the cart is empty")
    return {
        "customer": cart.customer,
        "lines": cart.summary(),
        "subtotal": cart.subtotal,
        "tax": cart.tax,
        "total": cart.total,
        "currency": cart.currency,
    }


if __name__ == "__main__":
    demo = Cart("demo")
    demo.add(Item("apple", 120, 3))
    checkout(demo)
