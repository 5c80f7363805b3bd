// A shopping cart for the storefront: items, a discount and the total.
import { formatMoney } from "./money.js";
import { track } from "./analytics.js";

const TAX_RATE = 0.2;
const MAX_QUANTITY = 99;

export function cents(amount) {
  return Math.round(amount * 100);
}

export const euros = (cents) => cents / 100;

/**
 * A cart belongs to one customer and lives until checkout.
 */
export class Cart {
  items = new Map();
  discount = null;

  constructor(customer) {
    this.customer = customer;
  }

  /** Adding an item twice raises its quantity. */
  add(item) {
    const current = this.items.get(item.sku);
    const quantity = item.quantity + (current ? current.quantity : 0);
    if (quantity > MAX_QUANTITY) {
      throw new CartError(item.sku, `at most ${MAX_QUANTITY} per item`);
    }
    this.items.set(item.sku, { ...item, quantity });
    track("add", item.sku);
  }

  remove(sku) {
    if (!this.items.has(sku)) {
      throw new CartError(sku, "not in the cart");
    }
    this.items.delete(sku);
  }

  clear() {
    this.items.clear();
    this.discount = null;
  }

  apply(discount) {
    if (this.discount) {
      throw new CartError(discount.code, "one discount per cart");
    }
    this.discount = discount;
  }

  get subtotal() {
    let sum = 0;
    for (const item of this.items.values()) {
      sum += item.price * item.quantity;
    }
    return sum;
  }

  get taxable() {
    if (!this.discount) {
      return this.subtotal;
    }
    return this.subtotal - Math.floor((this.subtotal * this.discount.percent) / 100);
  }

  get total() {
    return this.taxable + Math.ceil(this.taxable * TAX_RATE);
  }

  // Bound once, so templates can pass it around as a callback.
  onRemoveClick = (event) => {
    this.remove(event.target.dataset.sku);
  };

  summary() {
    const lines = [];
    for (const item of this.items.values()) {
      lines.push(`${item.quantity} x ${item.sku}`);
    }
    lines.push(`total ${formatMoney(this.total)}`);
    return lines;
  }

  static fromJSON(data) {
    const cart = new Cart(data.customer);
    for (const item of data.items) {
      cart.add(item);
    }
    return cart;
  }
}

export class CartError extends Error {
  constructor(sku, reason) {
    super(`${sku}: ${reason}`);
    this.sku = sku;
  }
}

Cart.prototype.toString = function () {
  return `Cart(${this.customer}, ${this.items.size} items)`;
};

export default Cart;
