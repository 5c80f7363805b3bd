// Package cart keeps a customer's items until checkout.
package cart

import (
	"errors"
	"fmt"
	"sort"
)

// TaxRate is applied to the discounted subtotal.
const TaxRate = 0.2

var ErrEmpty = errors.New("cart: empty")

// Item is one product line.
type Item struct {
	SKU      string
	Price    int
	Quantity int
}

// Cart holds items by SKU.
type Cart struct {
	Customer string
	items    map[string]Item
	discount int
}

func New(customer string) *Cart {
	return &Cart{Customer: customer, items: map[string]Item{}}
}

// Add puts an item in the cart; adding it again raises the quantity.
func (c *Cart) Add(item Item) {
	if current, ok := c.items[item.SKU]; ok {
		item.Quantity += current.Quantity
	}
	c.items[item.SKU] = item
}

func (c *Cart) Remove(sku string) error {
	if _, ok := c.items[sku]; !ok {
		return fmt.Errorf("cart: %s not in the cart", sku)
	}
	delete(c.items, sku)
	return nil
}

func (c *Cart) Len() int { return len(c.items) }

func (c *Cart) Empty() bool { return len(c.items) == 0 }

// Total is the subtotal less the discount, plus tax.
func (c *Cart) Total() (int, error) {
	if c.Empty() {
		return 0, ErrEmpty
	}
	subtotal := 0
	for _, item := range c.items {
		subtotal += item.Price * item.Quantity
	}
	taxable := subtotal - subtotal*c.discount/100
	return taxable + int(float64(taxable)*TaxRate+0.5), nil
}

func (c Cart) SKUs() []string {
	skus := make([]string, 0, len(c.items))
	for sku := range c.items {
		skus = append(skus, sku)
	}
	sort.Strings(skus)
	return skus
}
