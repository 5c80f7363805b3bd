<?php

declare(strict_types=1);

namespace App\Shop;

use App\Shop\Item;
use InvalidArgumentException;

require_once __DIR__ . '/helpers.php';

const TAX_RATE = 0.2;

function cents(float $amount): int
{
    return (int) round($amount * 100);
}

function euros(int $cents): float
{
    return $cents / 100;
}

interface Priced
{
    public function total(): int;
}

/**
 * A customer's cart of items, with at most one discount.
 */
final class Cart implements Priced, \Countable
{
    public const MAX_QUANTITY = 99;

    /** @var array<string, Item> */
    private array $items = [];
    private ?int $discount = null;

    public function __construct(private readonly string $customer)
    {
    }

    /** Adding an item twice raises its quantity. */
    public function add(Item $item): void
    {
        $current = $this->items[$item->sku] ?? null;
        $quantity = $item->quantity + ($current?->quantity ?? 0);
        if ($quantity > self::MAX_QUANTITY) {
            throw new InvalidArgumentException("at most " . self::MAX_QUANTITY . " per item");
        }
        $this->items[$item->sku] = $item->withQuantity($quantity);
    }

    public function remove(string $sku): void
    {
        if (!isset($this->items[$sku])) {
            throw new InvalidArgumentException("$sku is not in the cart");
        }
        unset($this->items[$sku]);
    }

    public function apply(int $percent): void
    {
        if ($this->discount !== null) {
            throw new \LogicException('one discount per cart');
        }
        $this->discount = $percent;
    }

    public function subtotal(): int
    {
        $sum = 0;
        foreach ($this->items as $item) {
            $sum += $item->price * $item->quantity;
        }
        return $sum;
    }

    #[\Override]
    public function total(): int
    {
        $taxable = $this->subtotal() - intdiv($this->subtotal() * ($this->discount ?? 0), 100);
        return $taxable + (int) ceil($taxable * TAX_RATE);
    }

    public function count(): int
    {
        return count($this->items);
    }

    public function has(string $sku): bool
    {
        return isset($this->items[$sku]);
    }

    public function clear(): void
    {
        $this->items = [];
        $this->discount = null;
    }

    /** @return list<string> */
    public function lines(): array
    {
        return array_map(
            fn (Item $item): string => "{$item->quantity} x {$item->sku}",
            array_values($this->items),
        );
    }
}
