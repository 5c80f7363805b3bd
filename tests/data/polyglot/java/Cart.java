package com.example.shop;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A customer's cart of items, with at most one discount code.
 */
public class Cart {
    public static final int MAX_QUANTITY = 99;
    private static final double TAX_RATE = 0.2;

    private final String customer;
    private final Map<String, Item> items = new LinkedHashMap<>();
    private Discount discount;

    public Cart(String customer) {
        this.customer = customer;
    }

    /** Adding an item twice raises its quantity. */
    public void add(Item item) {
        Item current = items.get(item.sku());
        int quantity = item.quantity() + (current == null ? 0 : current.quantity());
        if (quantity > MAX_QUANTITY) {
            throw new IllegalArgumentException("at most " + MAX_QUANTITY + " of " + item.sku());
        }
        items.put(item.sku(), new Item(item.sku(), item.price(), quantity));
    }

    public void remove(String sku) {
        if (items.remove(sku) == null) {
            throw new IllegalArgumentException(sku + " is not in the cart");
        }
    }

    public void apply(Discount discount) {
        if (this.discount != null) {
            throw new IllegalStateException("one discount per cart");
        }
        this.discount = discount;
    }

    public int subtotal() {
        int sum = 0;
        for (Item item : items.values()) {
            sum += item.price() * item.quantity();
        }
        return sum;
    }

    public int total() {
        int taxable = discount == null ? subtotal() : discount.reduce(subtotal());
        return taxable + (int) Math.ceil(taxable * TAX_RATE);
    }

    public List<String> lines() {
        List<String> lines = new ArrayList<>();
        for (Item item : items.values()) {
            lines.add(item.quantity() + " x " + item.sku());
        }
        return lines;
    }

    @Override
    public String toString() {
        return "Cart(" + customer + ", " + items.size() + " items)";
    }

    public record Item(String sku, int price, int quantity) {
        public Item {
            if (quantity < 1) {
                throw new IllegalArgumentException("quantity must be positive");
            }
        }
    }

    public enum Discount {
        WELCOME(10),
        LOYALTY(15);

        private final int percent;

        Discount(int percent) {
            this.percent = percent;
        }

        int reduce(int amount) {
            return amount - amount * percent / 100;
        }
    }
}

interface Priced {
    int total();
}
