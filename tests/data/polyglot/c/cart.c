#include <stdio.h>
#include <string.h>

#include "cart.h"

#define TAX_PERCENT 20

static int round_up(int amount, int percent) { return (amount * percent + 99) / 100; }

static int same_sku(const item_t *a, const item_t *b) { return strcmp(a->sku, b->sku) == 0; }

/* Adding an item twice raises its quantity; returns -1 when the cart is full. */
int cart_add(cart_t *cart, const item_t *item)
{
    for (size_t i = 0; i < cart->count; i++) {
        if (same_sku(&cart->items[i], item)) {
            cart->items[i].quantity += item->quantity;
            return 0;
        }
    }
    if (cart->count == CART_MAX_ITEMS) {
        return -1;
    }
    cart->items[cart->count++] = *item;
    return 0;
}

int cart_total(const cart_t *cart)
{
    int subtotal = 0;
    for (size_t i = 0; i < cart->count; i++) {
        subtotal += cart->items[i].price * cart->items[i].quantity;
    }
    return subtotal + round_up(subtotal, TAX_PERCENT);
}

static const char *
describe(const cart_t *cart, char *buffer, size_t size)
{
    snprintf(buffer, size, "cart of %s: %zu items", cart->customer, cart->count);
    return buffer;
}

int main(void)
{
    cart_t cart = {.customer = "ada"};
    item_t apple = {.sku = "apple", .price = 120, .quantity = 3};
    char buffer[64];
    cart_add(&cart, &apple);
    printf("%s, total %d\n", describe(&cart, buffer, sizeof buffer), cart_total(&cart));
    return 0;
}
