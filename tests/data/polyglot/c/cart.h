#ifndef CART_H
#define CART_H

#include <stddef.h>

#define CART_MAX_ITEMS 64

/* One product line. */
typedef struct {
    char sku[16];
    int price;
    int quantity;
} item_t;

typedef struct cart {
    const char *customer;
    item_t items[CART_MAX_ITEMS];
    size_t count;
} cart_t;

int cart_add(cart_t *cart, const item_t *item);
int cart_total(const cart_t *cart);

#endif /* CART_H */
