//! A customer's cart: items by SKU, one discount, and the total with tax.

use std::collections::BTreeMap;
use std::fmt;

pub const TAX_PERCENT: u32 = 20;

/// One product line.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub sku: String,
    pub price: u32,
    pub quantity: u32,
}

#[derive(Debug)]
pub enum CartError {
    Empty,
    Missing(String),
}

pub trait Priced {
    fn subtotal(&self) -> u32;

    /// The subtotal plus tax, rounded up.
    fn total(&self) -> u32 {
        let subtotal = self.subtotal();
        subtotal + (subtotal * TAX_PERCENT + 99) / 100
    }
}

#[derive(Default)]
pub struct Cart {
    customer: String,
    items: BTreeMap<String, Item>,
}

impl Cart {
    pub fn new(customer: &str) -> Self {
        Cart {
            customer: customer.to_string(),
            items: BTreeMap::new(),
        }
    }

    /// Adding an item twice raises its quantity.
    pub fn add(&mut self, item: Item) {
        let quantity = self.items.get(&item.sku).map_or(0, |current| current.quantity);
        let sku = item.sku.clone();
        self.items.insert(sku, Item { quantity: item.quantity + quantity, ..item });
    }

    pub fn remove(&mut self, sku: &str) -> Result<Item, CartError> {
        self.items
            .remove(sku)
            .ok_or_else(|| CartError::Missing(sku.to_string()))
    }

    /// Sets the quantity of an item already in the cart; zero removes it.
    pub fn set_quantity(&mut self, sku: &str, quantity: u32) -> Result<(), CartError> {
        if quantity == 0 {
            return self.remove(sku).map(|_| ());
        }
        match self.items.get_mut(sku) {
            Some(item) => {
                item.quantity = quantity;
                Ok(())
            }
            None => Err(CartError::Missing(sku.to_string())),
        }
    }

    pub fn merge(&mut self, other: Cart) {
        for item in other.items.into_values() {
            self.add(item);
        }
    }

    pub fn most_expensive(&self) -> Option<&Item> {
        self.items.values().max_by_key(|item| item.price)
    }

    pub fn clear(&mut self) {
        self.items.clear();
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn contains(&self, sku: &str) -> bool {
        self.items.contains_key(sku)
    }

    pub fn quantity_of(&self, sku: &str) -> u32 {
        self.items.get(sku).map_or(0, |item| item.quantity)
    }

    pub fn skus(&self) -> Vec<&str> {
        self.items.keys().map(String::as_str).collect()
    }

    /// Checkout needs at least one item; it returns the total to charge.
    pub fn checkout(&self) -> Result<u32, CartError> {
        if self.is_empty() {
            return Err(CartError::Empty);
        }
        Ok(self.total())
    }

    pub fn lines(&self) -> Vec<String> {
        self.items
            .values()
            .map(|item| format!("{} x {}", item.quantity, item.sku))
            .collect()
    }
}

impl Priced for Cart {
    fn subtotal(&self) -> u32 {
        self.items.values().map(|item| item.price * item.quantity).sum()
    }
}

impl fmt::Display for Cart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cart({}, {} items)", self.customer, self.items.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_twice_raises_quantity() {
        let mut cart = Cart::new("ada");
        let item = Item { sku: "apple".into(), price: 120, quantity: 1 };
        cart.add(item.clone());
        cart.add(item);
        assert_eq!(cart.subtotal(), 240);
    }
}
